"""Data-parallel training on two CPU processes (gloo): they train one model together.

The library test starts two processes the way torchrun does (RANK / WORLD_SIZE / MASTER_ADDR in the
environment, the process group joined by `train` itself) and checks that each trained on its own
half of every epoch, yet both end with the same weights, BatchNorm statistics and history, with
the epoch callback (MLflow logging in a stage) on rank 0 only; also for a distillation loss that
has parameters of its own, some unused. The stage test runs the README's exact command,
`torchrun --standalone --nproc_per_node=2 stages/train_student.py`, on a tiny workspace and finds
one MLflow run whose loss curve was logged once per epoch, and one set of outputs.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from signkd.inference import DecodeConfig
from signkd.kd.loss import HKDLoss, KDConfig, attach_teacher_outputs
from signkd.models.checkpoint import freeze
from signkd.models.recognizer import KeypointStudent, MultiModalTeacher
from signkd.seeding import set_seed
from signkd.training.loader import batches
from signkd.training.trainer import TrainConfig, ctc_loss, train
from tests.tiny_workspace import ROOT, custom_workspace
from tests.toy_data import toy_items, toy_vocab

pytestmark = pytest.mark.scale

WORLD = 2
TRAIN_ITEMS, EPOCHS, BATCH = 21, 3, 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, out_dir: str, kind: str) -> None:
    """One process of the job: what torchrun would start, training through the library."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(WORLD))
    torch.set_num_threads(1)
    vocab = toy_vocab()
    train_items, dev_items = toy_items(TRAIN_ITEMS, seed=1), toy_items(5, seed=2)
    loss_module = None
    if kind == "hkd":  # a distillation loss with learned adapters; the temporal one is unused (weight 0)
        set_seed(5)
        attach_teacher_outputs(freeze(MultiModalTeacher(12, 24, vocab.num_classes, modalities=("keypoints",))),
                               train_items)
        loss_module = HKDLoss(32, 24, KDConfig(alpha=0.5, temperature=2.0,
                                               level_weights={"frame": 0.5, "temporal": 0.0, "sequence": 1.0}))
    seen: list[int] = []
    if loss_module is None:
        def loss(out, batch):  # a plain function, as the default CTC loss
            seen.append(int(batch["lengths"].numel()))  # samples this rank trained on
            return ctc_loss(out, batch)
    else:
        loss = _Recording(loss_module, seen)
    set_seed(0)
    model = KeypointStudent(12, 32, vocab.num_classes, dropout=0.1)
    logged: list[int] = []
    cfg = TrainConfig(epochs=EPOCHS, lr=1e-2, batch_size=BATCH, seed=0, decoding=DecodeConfig("greedy"))
    result = train(model, train_items, dev_items, vocab, cfg, loss, on_epoch=lambda epoch, record: logged.append(epoch))
    state = {f"model.{k}": v.contiguous() for k, v in model.state_dict().items()}
    if loss_module is not None:
        state |= {f"loss.{k}": v.detach().cpu().contiguous() for k, v in loss_module.state_dict().items()}
    save_file(state, str(Path(out_dir) / f"rank{rank}.safetensors"))
    (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(
        {"history": result.history, "logged": logged, "seen": sum(seen), "best_epoch": result.best_epoch}))
    torch.distributed.destroy_process_group()


class _Recording(torch.nn.Module):
    """A loss module that also counts the samples it sees (kept a module, so DDP syncs its adapters)."""

    def __init__(self, loss: torch.nn.Module, seen: list[int]):
        super().__init__()
        self.loss = loss
        self.seen = seen

    def forward(self, out, batch):
        self.seen.append(int(batch["lengths"].numel()))
        return self.loss(out, batch)


def _run_two_ranks(tmp_path: Path, kind: str, timeout: float = 300.0) -> list[dict]:
    ctx = mp.start_processes(_worker, args=(_free_port(), str(tmp_path), kind), nprocs=WORLD, join=False,
                             start_method="spawn")
    deadline = time.monotonic() + timeout
    try:
        while not ctx.join(timeout=1):
            assert time.monotonic() < deadline, f"the {WORLD} ranks did not finish within {timeout} s (a hang?)"
    finally:
        for proc in ctx.processes:
            if proc.is_alive():
                proc.kill()
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]


@pytest.mark.parametrize("kind", ["ctc", "hkd"])
def test_two_processes_train_one_model_together(tmp_path, kind):
    reports = _run_two_ranks(tmp_path, kind)
    weights = [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in range(WORLD)]
    assert weights[0].keys() == weights[1].keys()
    different = [k for k in weights[0] if not torch.equal(weights[0][k], weights[1][k])]
    assert not different, f"the ranks ended with different tensors: {different[:5]}"
    if kind == "hkd":
        assert any(k.startswith("loss.adapters.frame") for k in weights[0])
    assert any("running_mean" in k for k in weights[0])  # BatchNorm statistics are compared too
    # each rank trained on its own half of every epoch (a DistributedSampler), not on all of it
    per_rank = math.ceil(TRAIN_ITEMS / WORLD)
    assert [r["seen"] for r in reports] == [EPOCHS * per_rank] * WORLD
    # one history (losses averaged over ranks, one dev WER), logged by rank 0 alone
    assert reports[0]["history"] == reports[1]["history"] and reports[0]["best_epoch"] == reports[1]["best_epoch"]
    assert reports[0]["logged"] == list(range(1, EPOCHS + 1)) and reports[1]["logged"] == []
    losses = [h["train_loss"] for h in reports[0]["history"]]
    assert losses[-1] < losses[0]


def test_distributed_sampler_shards_cover_every_item_once_per_epoch():
    """What `batches` draws on each rank: disjoint shards (up to the padding that evens them out)
    that together hold every item, in equal numbers of batches, and a new order each epoch."""
    items = toy_items(TRAIN_ITEMS, seed=1)
    shards = []
    for rank in range(WORLD):
        sampler = torch.utils.data.DistributedSampler(items, num_replicas=WORLD, rank=rank, shuffle=True, seed=0)
        sampler.set_epoch(1)
        shards.append(list(sampler))
        assert len(list(batches(items, BATCH, shuffle=True, sampler=sampler))) == math.ceil(len(shards[-1]) / BATCH)
    assert sorted(set(shards[0]) | set(shards[1])) == list(range(TRAIN_ITEMS))
    assert len(shards[0]) == len(shards[1]) == math.ceil(TRAIN_ITEMS / WORLD)
    sampler.set_epoch(2)
    assert list(sampler) != shards[-1]


def test_torchrun_trains_a_stage_with_rank_zero_writing_once(tmp_path):
    workspace = custom_workspace(tmp_path / "ws", ("prepare", "extract_keypoints"), {"student": {"epochs": 2}})
    env = {k: v for k, v in os.environ.items() if k not in ("DVC_ROOT", "MLFLOW_TRACKING_URI", "RANK", "WORLD_SIZE")}
    env |= {"MLFLOW_TRACKING_URI": f"sqlite:///{workspace / 'mlflow.db'}", "OMP_NUM_THREADS": "1"}
    torchrun = Path(sys.executable).parent / "torchrun"
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", str(ROOT / "stages" / "train_student.py")],
                          cwd=workspace, env=env, capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{workspace / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("signkd")
    runs = client.search_runs([experiment.experiment_id], "tags.stage = 'train_student'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    curve = client.get_metric_history(runs[0].info.run_id, "train_loss")
    assert sorted(m.step for m in curve) == [1, 2]  # once per epoch, not once per rank
    everywhere = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert sorted(r.data.tags.get("stage", "?") for r in everywhere) == ["extract_keypoints", "prepare", "train_student"]
    # both ranks ran the stage; only rank 0 opened a run and wrote outputs
    assert "[train_student rank 1] INFO done in" in output and "[train_student] INFO done in" in output
    metrics = json.loads((workspace / "reports/train_student/metrics.json").read_text())
    assert metrics["num_parameters"] > 0 and "test_wer" in metrics
    assert (workspace / "models/train_student/model.safetensors").is_file()
    assert len((workspace / "reports/train_student/curve.csv").read_text().splitlines()) == 1 + 2
