"""The real DAG, end to end: `dvc repro` on a tiny profile in a temporary copy of the repo,
then `dvc exp run -S kd.alpha=0.5`, checking metrics files, MLflow runs and what reran."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = (
    "prepare", "validate", "extract_keypoints", "extract_flow", "validate_features", "train_teacher", "train_student",
    "teacher_targets", "tune", "distill", "quantize", "correct", "report",
)
TINY = {
    "data": {"synthetic": {"num_train": 8, "num_dev": 3, "num_test": 3, "num_signers": 2, "min_signs": 1, "max_signs": 2}},
    "teacher": {"epochs": 2}, "student": {"epochs": 2},
    "kd": {"epochs": 2, "temperature": "tuned"},  # tune searches the temperature only; alpha stays a number
    "tune": {"n_trials": 2, "n_startup_trials": 1, "epochs": 2, "min_epochs": 1},
    "quantize": {"latency_runs": 3},
    "correct": {"pretrain_steps": 20, "finetune_steps": 10, "noise_samples": 100, "translate_steps": 5,
                "grammar_sentences": 500},
}


def _merge(base: dict, over: dict) -> dict:
    for k, v in over.items():
        base[k] = _merge(base[k], v) if isinstance(v, dict) else v
    return base


def _run(args: list[str], cwd: Path, env: dict) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory) -> tuple[Path, dict]:
    repo = tmp_path_factory.mktemp("signkd") / "repo"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for rel in files:
        src = ROOT / rel
        if src.is_file() and not rel.startswith("reports/"):
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / rel)
    params = _merge(yaml.safe_load((repo / "params.yaml").read_text()), TINY)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("DVC_ROOT", None)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    _run(["git", "init", "-q"], repo, env)
    _run([*git, "add", "-A"], repo, env)
    _run([*git, "commit", "-qm", "tiny"], repo, env)
    _run(["dvc", "repro"], repo, env)
    return repo, env


def _runs(repo: Path) -> list[dict]:
    with sqlite3.connect(repo / "mlflow.db") as db:
        rows = db.execute(
            "SELECT r.run_uuid, t.value FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid WHERE t.key = 'stage'"
        ).fetchall()
        params = db.execute("SELECT run_uuid, key, value FROM params").fetchall()
    by_run: dict[str, dict] = {}
    for run, key, value in params:
        by_run.setdefault(run, {})[key] = value
    return [{"run": run, "stage": stage, "params": by_run.get(run, {})} for run, stage in rows]


def _hypotheses(path: Path) -> dict[str, tuple[list[str], list[str]]]:
    rows = path.read_text(encoding="utf-8").splitlines()[1:]
    return {r.split("|")[0]: (r.split("|")[1].split(), r.split("|")[2].split()) for r in rows}


def _mlflow_metric(repo: Path, stage: str, key: str) -> float:
    with sqlite3.connect(repo / "mlflow.db") as db:
        (value,) = db.execute(
            "SELECT m.value FROM latest_metrics m JOIN tags t ON t.run_uuid = m.run_uuid "
            "WHERE t.key = 'stage' AND t.value = ? AND m.key = ? ORDER BY m.timestamp DESC LIMIT 1", (stage, key)
        ).fetchone()
    return value


@pytest.mark.e2e
def test_reported_wers_are_the_wers_of_the_written_hypotheses(tiny_repo):
    """Every stage's test WER (metrics.json and MLflow) is what its own hypothesis file scores to."""
    from signkd.scoring import official_wer

    repo, _ = tiny_repo
    for stage in STAGES:
        assert "wall_time_s" in json.loads((repo / "reports" / stage / "metrics.json").read_text()), stage
    for stage, key in (("train_teacher", "test_wer"), ("train_student", "test_wer"), ("distill", "test_wer"),
                       ("quantize", "test_wer"), ("correct", "test_wer_after")):
        metrics = json.loads((repo / "reports" / stage / "metrics.json").read_text())
        hyps = _hypotheses(repo / "reports" / stage / "test_hyp.txt")
        assert len(hyps) == TINY["data"]["synthetic"]["num_test"], stage
        wer = official_wer([r for r, _ in hyps.values()], [h for _, h in hyps.values()], clean="none").wer
        assert metrics[key] == pytest.approx(wer), stage
        assert _mlflow_metric(repo, stage, key) == pytest.approx(wer), stage
    assert set(STAGES) <= {r["stage"] for r in _runs(repo)}


@pytest.mark.e2e
def test_pytorch_onnx_and_recognize_give_the_same_hypotheses(tiny_repo):
    """One inference path: the distilled model's PyTorch WER (batched) equals its fp32 ONNX WER
    (one utterance at a time), and `signkd recognize` on a test video prints the int8 model's
    hypothesis that `quantize` wrote for that video."""
    repo, env = tiny_repo
    distill = json.loads((repo / "reports/distill/metrics.json").read_text())
    quantize = json.loads((repo / "reports/quantize/metrics.json").read_text())
    for split in ("dev", "test"):
        assert quantize[f"torch_{split}_wer"] == distill[f"{split}_wer"]
        assert quantize[f"fp32_{split}_wer"] == quantize[f"torch_{split}_wer"]
    video_id, (_, int8_hyp) = sorted(_hypotheses(repo / "reports/quantize/test_hyp.txt").items())[0]
    frames = next((repo / "data/raw").rglob(video_id))
    out = _run(["signkd", "recognize", str(frames), "--json", "--no-correction"], repo, env)
    printed = json.loads(out[out.index("{"):out.rindex("}") + 1])
    assert printed["glosses"].split() == int8_hyp


@pytest.mark.e2e
def test_experiment_with_new_alpha_distils_with_that_alpha_and_keeps_the_temperature_tuned(tiny_repo):
    """`dvc exp run -S kd.alpha=0.5` distils with alpha 0.5 (a number means that number), while the
    temperature, marked `tuned`, is still the tune stage's best trial, searched with alpha at 0.5."""
    repo, env = tiny_repo
    out = _run(["dvc", "exp", "run", "-S", "kd.alpha=0.5"], repo, env)
    for skipped in ("prepare", "extract_keypoints", "extract_flow", "train_teacher", "train_student", "teacher_targets"):
        assert f"'{skipped}' didn't change" in out or f"Stage '{skipped}' didn't change" in out, skipped
    for rerun in ("tune", "distill", "quantize", "correct", "report"):
        assert f"Running stage '{rerun}'" in out, rerun
    distills = {float(r["params"]["kd.alpha_used"]): r["params"] for r in _runs(repo) if r["stage"] == "distill"}
    assert set(distills) == {0.7, 0.5}
    trials = [r["params"] for r in _runs(repo) if r["stage"] == "tune" and "kd.alpha" in r["params"]]
    assert {float(p["kd.alpha"]) for p in trials} == {0.7, 0.5}, "each search held alpha at the run's number"
    best = json.loads((repo / "models/tune/best_params.json").read_text())
    assert set(best) == {"kd.temperature", "dev_wer", "trial"}, "only the `tuned` key is searched"
    assert float(distills[0.5]["kd.temperature_used"]) == pytest.approx(best["kd.temperature"])
    assert json.loads((repo / "reports/distill/metrics.json").read_text())["alpha"] == 0.5
    shown = _run(["dvc", "exp", "show", "--json"], repo, env)
    assert "0.5" in shown
