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
    "tune", "distill", "quantize", "correct", "report",
)
TINY = {
    "data": {"synthetic": {"num_train": 8, "num_dev": 3, "num_test": 3, "num_signers": 2, "min_signs": 1, "max_signs": 2}},
    "teacher": {"epochs": 2}, "student": {"epochs": 2}, "kd": {"epochs": 2},
    "tune": {"n_trials": 2, "epochs": 1},
    "quantize": {"latency_runs": 3},
    "correct": {"pretrain_steps": 20, "finetune_steps": 10, "noise_samples": 100},
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


@pytest.mark.e2e
def test_dvc_repro_produces_every_metric_and_mlflow_run(tiny_repo):
    repo, _ = tiny_repo
    for stage in STAGES:
        metrics = json.loads((repo / "reports" / stage / "metrics.json").read_text())
        assert "wall_time_s" in metrics, stage
    for stage in ("train_teacher", "train_student", "distill", "quantize"):
        m = json.loads((repo / "reports" / stage / "metrics.json").read_text())
        assert 0 <= m["test_wer"] and 0 <= m["dev_wer"] and m["model_size_mb"] > 0, stage
    correct = json.loads((repo / "reports/correct/metrics.json").read_text())
    # the gate is calibrated on dev with the same scorer, so correction never raises dev WER
    assert correct["dev_wer_after"] <= correct["dev_wer_before"] + 1e-9
    assert (repo / "models/quantize/student_int8.onnx").is_file()
    table = (repo / "reports/README.md").read_text()
    assert "int8" in table and "| model |" in table
    stages_logged = {r["stage"] for r in _runs(repo)}
    assert set(STAGES) <= stages_logged


@pytest.mark.e2e
def test_experiment_with_new_alpha_reruns_only_distillation_onwards(tiny_repo):
    repo, env = tiny_repo
    out = _run(["dvc", "exp", "run", "-S", "kd.alpha=0.5"], repo, env)
    for skipped in ("prepare", "extract_keypoints", "extract_flow", "train_teacher", "train_student"):
        assert f"'{skipped}' didn't change" in out or f"Stage '{skipped}' didn't change" in out, skipped
    for rerun in ("tune", "distill", "quantize", "correct", "report"):
        assert f"Running stage '{rerun}'" in out, rerun
    distill_alphas = {r["params"].get("kd.alpha") for r in _runs(repo) if r["stage"] == "distill"}
    assert {"0.7", "0.5"} <= distill_alphas
    shown = _run(["dvc", "exp", "show", "--json"], repo, env)
    assert "0.5" in shown
