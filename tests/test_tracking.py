import json
from pathlib import Path

import mlflow
import pytest

from signkd.params import load_params
from signkd.tracking import flat_metrics, repo_root, stage_run, tracking_uri, write_stage_metrics

ROOT = Path(__file__).resolve().parents[1]


def test_repo_root_prefers_dvc_root(monkeypatch, tmp_path):
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    assert repo_root() == tmp_path.resolve()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"


def test_stage_run_logs_params_tags_and_metrics(monkeypatch, tmp_path):
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    params = load_params(ROOT / "params.yaml")
    with stage_run("unit_stage", params) as run:
        path = write_stage_metrics("unit_stage", {"test_wer": 12.5, "model_size_mb": 0.3, "dataset": "synthetic"})
    assert json.loads(path.read_text()) == {"dataset": "synthetic", "model_size_mb": 0.3, "test_wer": 12.5}
    assert (tmp_path / "mlflow.db").is_file()
    client = mlflow.tracking.MlflowClient(tracking_uri())
    logged = client.get_run(run.info.run_id)
    assert logged.data.params["kd.alpha"] == str(params.kd.alpha)
    assert logged.data.metrics["test_wer"] == pytest.approx(12.5)
    assert logged.data.tags["stage"] == "unit_stage" and "git_commit" in logged.data.tags


def test_flat_metrics_flattens_and_keeps_numbers():
    assert flat_metrics({"a": {"b": 1, "c": [1]}, "d": True, "e": "x"}) == {"a_b": 1, "d": 1, "e": "x"}


def test_a_store_from_another_mlflow_version_is_one_line_saying_what_to_do(monkeypatch, tmp_path):
    """A fresh install can get a newer MLflow than an older checkout's (3.18 vs 3.17 here): its
    store then has a schema revision this MLflow does not know, and MLflow's own advice
    (`mlflow db upgrade`) fails on a newer store."""
    import sqlite3

    from signkd.tracking import prepare_store

    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    prepare_store()  # a store of this MLflow's schema
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        db.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")  # a revision from another version
    import subprocess
    import sys

    code = ("from signkd.errors import InputError\nfrom signkd.tracking import prepare_store\n"
            "try:\n    prepare_store()\nexcept InputError as err:\n    print('INPUT', err)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                         env={**__import__("os").environ, "DVC_ROOT": str(tmp_path)}).stdout.strip()
    assert out.startswith("INPUT ") and "another MLflow version" in out and "mlflow.db" in out and "\n" not in out, out
