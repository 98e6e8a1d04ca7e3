"""A shared Optuna study on a real PostgreSQL server: workers that meet a fresh database at the same
moment all join one study, and two real `tune` stage processes add their trials to it, none lost,
none twice. Skipped (with the reason) where PostgreSQL cannot start; .ci/run installs it."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

from signkd.study import StorageError, open_storage
from tests.services import create_database, free_port, postgres_server
from tests.tiny_workspace import ROOT, custom_workspace

pytestmark = pytest.mark.scale


@pytest.fixture(scope="module")
def pg() -> str:
    with postgres_server() as url:
        yield url


# Imports first, then waits for the go file, so that all workers hit the fresh database at once.
RACER = """
import pathlib, sys, time
from signkd.study import open_study
url, ready, go = sys.argv[1:4]
pathlib.Path(ready).touch()
while not pathlib.Path(go).exists():
    time.sleep(0.001)
study = open_study("race", url, seed=None)
study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=3)
"""


def _start_together(commands: list[list[str]], tmp_path: Path, env: dict | None = None) -> list[subprocess.CompletedProcess]:
    procs = [subprocess.Popen([*cmd, str(tmp_path / f"ready{i}"), str(tmp_path / "go")], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i, cmd in enumerate(commands)]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready{i}").exists() for i in range(len(procs))):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "a worker did not get ready"
        time.sleep(0.05)
    (tmp_path / "go").touch()
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=300), *p.communicate()) for p in procs]


def test_workers_meeting_a_fresh_database_all_join_one_study(pg, tmp_path):
    """Without the retry in signkd.study.open_storage, all but one die on duplicate-key errors
    while creating Optuna's tables (seen here on PostgreSQL 15 in every round)."""
    url = create_database(pg, "fresh")
    done = _start_together([[sys.executable, "-c", RACER, url] for _ in range(4)], tmp_path)
    for proc in done:
        assert proc.returncode == 0, proc.stderr[-3000:]
    trials = optuna.load_study(study_name="race", storage=url).trials
    assert sorted(t.number for t in trials) == list(range(12))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)


def test_a_wrong_storage_url_fails_in_one_line_without_its_password():
    pytest.importorskip("psycopg")
    with pytest.raises(StorageError) as err:  # nothing listens on that port
        open_storage(f"postgresql+psycopg://user:s3cret@127.0.0.1:{free_port()}/optuna")
    message = str(err.value)
    assert "s3cret" not in message and "user:***@127.0.0.1" in message and "\n" not in message, message
    with pytest.raises(StorageError, match="ArgumentError"):
        open_storage("postgres//typo")


def _trials_logged(workspace: Path) -> list[int]:
    """Trial numbers this worker ran, from its own MLflow store (one nested run per trial)."""
    with sqlite3.connect(workspace / "mlflow.db") as db:
        rows = db.execute(
            "SELECT t.value FROM tags t JOIN runs r ON r.run_uuid = t.run_uuid "
            "WHERE t.key = 'trial' AND r.status = 'FINISHED'"
        ).fetchall()
    return sorted(int(v) for (v,) in rows)


def test_two_tune_workers_share_one_study(pg, tmp_path):
    base = custom_workspace(tmp_path / "base", ("prepare", "extract_keypoints", "extract_flow", "train_teacher",
                                                     "teacher_targets"), {"kd": {"temperature": "tuned"}})
    url = create_database(pg, "tune")
    params = yaml.safe_load((base / "params.yaml").read_text())
    n = params["tune"]["n_trials"]
    env = {k: v for k, v in os.environ.items() if k not in ("DVC_ROOT", "OPTUNA_STORAGE", "MLFLOW_TRACKING_URI")}
    env["OMP_NUM_THREADS"] = "1"
    workers = {}
    for name in ("a", "b"):  # two machines: each its own copy of the workspace and MLflow store
        workspace = tmp_path / name
        shutil.copytree(base, workspace, ignore=shutil.ignore_patterns("mlflow.db*", "mlartifacts"))
        worker_env = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{workspace / 'mlflow.db'}"}
        if name == "a":
            worker_env["OPTUNA_STORAGE"] = url  # the environment variable ...
        else:
            params["tune"]["storage"] = url  # ... and the parameter both reach the one study
            (workspace / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        workers[name] = (workspace, subprocess.Popen(
            [sys.executable, str(ROOT / "stages" / "tune.py")], cwd=workspace, env=worker_env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    for name, (_, proc) in workers.items():
        out = proc.communicate(timeout=600)[0]
        assert proc.returncode == 0, f"worker {name} failed:\n{out[-4000:]}"

    names = optuna.get_all_study_names(storage=url)
    assert len(names) == 1, f"the workers made {len(names)} studies: {names}"
    study = optuna.load_study(study_name=names[0], storage=url)
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(2 * n)), "a trial is missing or counted twice"
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    assert all(t.state in finished for t in study.trials), [t.state.name for t in study.trials]
    ran = {name: _trials_logged(ws) for name, (ws, _) in workers.items()}
    assert len(ran["a"]) == len(ran["b"]) == n and not set(ran["a"]) & set(ran["b"]), ran
    assert set(ran["a"]) | set(ran["b"]) == set(numbers)
    # unseeded when shared: two workers with one params.seed must not try the same settings
    tried = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(tried)) == len(tried), tried
    # whoever finished last saw every trial and reports the study's best
    last = max(workers.values(), key=lambda w: json.loads((w[0] / "reports/tune/metrics.json").read_text())["n_trials"])
    best = json.loads((last[0] / "models/tune/best_params.json").read_text())
    assert best["kd.temperature"] == study.best_params["kd.temperature"]
