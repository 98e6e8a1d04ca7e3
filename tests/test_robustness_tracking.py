"""No lost or stuck MLflow runs: parallel writers on a fresh store, killed stages, a copied repository.

Each test runs real MLflow on a SQLite store in a temporary "repository" (a folder with dvc.yaml
and DVC_ROOT pointing at it), through `stage_run`, the one entry every stage uses.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from signkd.params import load_params
from signkd.tracking import EXPERIMENT, stage_run, tracking_uri

ROOT = Path(__file__).resolve().parents[1]

# A stage-like process: waits for `go`, then opens a stage run (and, with `hold`, stays in it).
WRITER = """
import os, sys, time
from pathlib import Path
root, name, hold = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "hold"
from signkd.params import load_params
from signkd.tracking import stage_run
params = load_params(sys.argv[4])
while not (root / "go").exists():
    time.sleep(0.01)
with stage_run(name, params) as run:
    (root / f"{name}.started").write_text(run.info.run_id)
    while hold:
        time.sleep(1)
print("logged", name)
"""


def _repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "dvc.yaml").write_text("stages: {}\n")
    return path


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return env | {"DVC_ROOT": str(root)}


def _writer(root: Path, name: str, hold: bool = False) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(root), name, "hold" if hold else "go",
                             str(ROOT / "params.yaml")], cwd=root, env=_env(root),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _runs(root: Path) -> dict[str, mlflow.entities.Run]:
    client = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(EXPERIMENT)
    return {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}


@pytest.fixture()
def in_repo(monkeypatch):
    def enter(root: Path) -> None:
        monkeypatch.setenv("DVC_ROOT", str(root))
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        monkeypatch.chdir(root)
    return enter


def test_two_writers_on_a_fresh_store_both_log(tmp_path):
    root = _repo(tmp_path / "repo")
    writers = [_writer(root, name) for name in ("stage_a", "stage_b")]
    time.sleep(4)  # both have imported MLflow and wait at the gate: they open the store together
    (root / "go").touch()
    logs = [w.communicate(timeout=240)[0] for w in writers]
    assert [w.returncode for w in writers] == [0, 0], "\n".join(logs)
    runs = _runs(root)
    assert {"stage_a", "stage_b"} <= set(runs) and all(r.info.status == "FINISHED" for r in runs.values())


def test_a_killed_stage_run_is_marked_killed_at_the_next_start(tmp_path, in_repo):
    root = _repo(tmp_path / "repo")
    (root / "go").touch()
    victim = _writer(root, "killed_stage", hold=True)
    deadline = time.time() + 240
    while not (root / "killed_stage.started").exists():
        assert victim.poll() is None and time.time() < deadline, victim.communicate()[0]
        time.sleep(0.2)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert _runs(root)["killed_stage"].info.status == "RUNNING"  # what a SIGKILL leaves behind

    in_repo(root)
    with stage_run("next_stage", load_params(ROOT / "params.yaml")):
        pass
    runs = _runs(root)
    assert runs["killed_stage"].info.status == "KILLED" and runs["killed_stage"].info.end_time
    assert runs["next_stage"].info.status == "FINISHED"


def test_a_copied_repository_writes_artifacts_into_itself(tmp_path, in_repo):
    original = _repo(tmp_path / "original")
    params = load_params(ROOT / "params.yaml")
    in_repo(original)
    with stage_run("first", params) as first:
        mlflow.log_text("from the original", "note.txt")
    shutil.copytree(original, tmp_path / "copy")
    shutil.rmtree(original)  # moved away: nothing may be written under the old path again

    copy = tmp_path / "copy"
    in_repo(copy)
    assert tracking_uri() == f"sqlite:///{copy / 'mlflow.db'}"
    with stage_run("second", params) as second:
        mlflow.log_text("from the copy", "note.txt")
    assert not original.exists()
    client = mlflow.MlflowClient(tracking_uri())
    assert client.get_experiment_by_name(EXPERIMENT).artifact_location == (copy / "mlartifacts").as_uri()
    for run in (first, second):
        uri = client.get_run(run.info.run_id).info.artifact_uri
        assert uri.startswith((copy / "mlartifacts").as_uri() + "/")
        assert (Path(uri.removeprefix("file://")) / "note.txt").is_file()
