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
