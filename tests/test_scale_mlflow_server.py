"""Tracking to a real `mlflow server` (SQLite backend, artifacts proxied to a local folder): a real
stage logs to it through MLFLOW_TRACKING_URI, and its run, metrics, params and artifacts are then
found with plain HTTP requests to the server's REST API; processes starting at the same moment on
a fresh server all get their run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.services import mlflow_server
from tests.tiny_workspace import ROOT, custom_workspace

pytestmark = pytest.mark.scale


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> tuple[str, Path]:
    """One server for the module (starting one takes a while); the first test meets it fresh."""
    home = tmp_path_factory.mktemp("mlflow-server")
    with mlflow_server(home) as url:
        yield url, home


def _get(url: str, path: str, **query) -> dict:
    with urllib.request.urlopen(f"{url}{path}?{urllib.parse.urlencode(query)}", timeout=30) as response:
        return json.load(response)


def _post(url: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(f"{url}{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _runs(url: str, filter_string: str = "") -> list[dict]:
    experiment = _get(url, "/api/2.0/mlflow/experiments/get-by-name", experiment_name="signkd")["experiment"]
    return _post(url, "/api/2.0/mlflow/runs/search",
                 {"experiment_ids": [experiment["experiment_id"]], "filter": filter_string, "max_results": 100}
                 ).get("runs", [])


def _env(tracking_uri: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DVC_ROOT", "MLFLOW_TRACKING_URI")}
    return {**env, "MLFLOW_TRACKING_URI": tracking_uri, "OMP_NUM_THREADS": "1"}


# Imports first, then waits for the go file: every process meets the fresh server at once.
PROBE = """
import pathlib, sys, time
import mlflow
from signkd.params import load_params
from signkd.tracking import stage_run
name, ready, go = sys.argv[1:4]
params = load_params("params.yaml")
pathlib.Path(ready).touch()
while not pathlib.Path(go).exists():
    time.sleep(0.001)
with stage_run(name, params):
    mlflow.log_metric("probe", 1.0)
"""


def test_processes_starting_together_on_a_fresh_server_all_get_their_run(server, tmp_path):
    url, _ = server
    with pytest.raises(urllib.error.HTTPError):  # fresh: no experiment yet (this test runs first here)
        _get(url, "/api/2.0/mlflow/experiments/get-by-name", experiment_name="signkd")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    procs = [subprocess.Popen([sys.executable, "-c", PROBE, f"probe{i}", str(tmp_path / f"ready{i}"), str(tmp_path / "go")],
                              cwd=workspace, env=_env(url), text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(4)]
    deadline = time.monotonic() + 180
    while not all((tmp_path / f"ready{i}").exists() for i in range(4)):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "a probe did not get ready"
        time.sleep(0.05)
    (tmp_path / "go").touch()
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    runs = _runs(url, "tags.stage LIKE 'probe%'")
    assert sorted({t["key"]: t["value"] for t in r["data"]["tags"]}["stage"] for r in runs) == [f"probe{i}" for i in range(4)]
    assert all(r["info"]["status"] == "FINISHED" for r in runs)


def test_stage_run_metrics_and_artifacts_through_the_rest_api(server, tmp_path):
    url, home = server
    workspace = custom_workspace(tmp_path / "ws", ())
    proc = subprocess.run([sys.executable, str(ROOT / "stages" / "prepare.py")], cwd=workspace, env=_env(url),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert not (workspace / "mlflow.db").exists(), "the stage logged to a local store, not to the server"

    runs = _runs(url, "tags.stage = 'prepare'")
    assert len(runs) == 1
    run = runs[0]
    assert run["info"]["status"] == "FINISHED"
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    local = json.loads((workspace / "reports/prepare/metrics.json").read_text())
    assert metrics["counts_train"] == local["counts_train"] == 3 and metrics["keypoints_imported"] == 5
    assert params["data.dataset"] == "custom"

    run_id = run["info"]["run_id"]
    listed = _get(url, "/api/2.0/mlflow/artifacts/list", run_id=run_id)
    assert "metrics.json" in {f["path"] for f in listed.get("files", [])}, listed
    # artifacts go through the server (proxied) into its artifact folder, not to the client's disk
    artifact_uri = run["info"]["artifact_uri"]
    assert artifact_uri.startswith("mlflow-artifacts:"), artifact_uri
    served = f"{url}/api/2.0/mlflow-artifacts/artifacts/{artifact_uri.split(':', 1)[1].lstrip('/')}/metrics.json"
    with urllib.request.urlopen(served, timeout=30) as response:
        assert json.load(response) == local
    assert list((home / "artifacts").rglob("metrics.json")), "artifact not stored under --artifacts-destination"
