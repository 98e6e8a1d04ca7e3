"""A training stage killed mid-run resumes from its end-of-epoch checkpoint and ends exactly as an
uninterrupted run would: same weights (byte for byte), same metrics, same curve."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from tests.tiny_workspace import ROOT, custom_workspace

EPOCHS = 30
CHECKPOINT = Path("models/.resume/train_student/student.pt")


def _stage(workspace: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("DVC_ROOT", "RANK", "WORLD_SIZE")}
    env |= {"MLFLOW_TRACKING_URI": f"sqlite:///{workspace / 'mlflow.db'}", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(ROOT / "stages" / "train_student.py")], cwd=workspace, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen) -> str:
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output[-3000:]
    return output


def _outcome(workspace: Path) -> tuple[bytes, dict, str]:
    metrics = json.loads((workspace / "reports/train_student/metrics.json").read_text())
    metrics.pop("wall_time_s")
    return ((workspace / "models/train_student/model.safetensors").read_bytes(), metrics,
            (workspace / "reports/train_student/curve.csv").read_text())


def test_a_sigkilled_training_stage_resumes_to_the_same_weights_and_metrics(tmp_path):
    # dropout and every augmentation on: a resume that lost any random state would diverge
    workspace = custom_workspace(tmp_path / "killed", ("prepare", "extract_keypoints"), {"student": {"epochs": EPOCHS}})
    reference = tmp_path / "reference"
    shutil.copytree(workspace, reference)
    _finish(_stage(reference))
    assert not (reference / CHECKPOINT.parent).exists(), "a finished stage leaves no checkpoint behind"

    proc = _stage(workspace)
    deadline = time.monotonic() + 300
    while not (workspace / CHECKPOINT).is_file():  # the first epoch is done: kill it in the next ones
        assert proc.poll() is None and time.monotonic() < deadline, "the stage wrote no checkpoint"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(workspace / CHECKPOINT, weights_only=True)["epoch"]
    assert 1 <= killed_at < EPOCHS, "the kill must land before training ended"
    assert not (workspace / "reports/train_student/metrics.json").exists()

    output = _finish(_stage(workspace))
    assert f"resuming after epoch {killed_at}" in output
    weights, metrics, curve = _outcome(workspace)
    ref_weights, ref_metrics, ref_curve = _outcome(reference)
    assert metrics == ref_metrics
    assert curve == ref_curve
    assert weights == ref_weights


def test_a_checkpoint_of_another_configuration_is_not_resumed(tmp_path, caplog):
    from signkd.models.recognizer import KeypointStudent
    from signkd.training.trainer import TrainConfig, set_seed, train
    from tests.toy_data import toy_items, toy_vocab

    vocab, items = toy_vocab(), toy_items(8, seed=1)
    path = tmp_path / "ckpt.pt"

    def run(lr: float) -> list[dict]:
        set_seed(0)
        model = KeypointStudent(12, 16, vocab.num_classes, dropout=0.0)
        return train(model, items, items[:2], vocab, TrainConfig(epochs=2, lr=lr, batch_size=4, seed=0),
                     checkpoint=path).history

    run(0.01)
    assert torch.load(path, weights_only=True)["epoch"] == 2
    history = run(0.02)  # another learning rate: the finished run must not be taken for this one
    assert [r["epoch"] for r in history] == [1, 2]
    assert "from another configuration" in caplog.text
