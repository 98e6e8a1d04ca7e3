"""A bad parameter changes nothing: DVC runs `check_params` before any other stage (so no output is
deleted), and a failed workspace `dvc exp run -S` gives params.yaml back.

The DVC test runs real `dvc exp run` in a temporary git repository holding the real check_params
stage (copied from dvc.yaml) and the real params.yaml, plus one cheap stage standing in for `tune`:
it reads `kd`, validates params.yaml itself like every stage, and owns a DVC-cached output and a
git-tracked metrics file, the two kinds of output the bad `-S` used to delete.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

WORK = """\
import json, pathlib, sys
from signkd.params import ParamsError, load_params
try:
    p = load_params("params.yaml")
except ParamsError as err:
    sys.exit(f"error: {err}")
pathlib.Path("models/work").mkdir(parents=True, exist_ok=True)
pathlib.Path("models/work/model.txt").write_text(f"alpha={p.kd.alpha}\\n")
pathlib.Path("reports/work").mkdir(parents=True, exist_ok=True)
pathlib.Path("reports/work/metrics.json").write_text(json.dumps({"alpha": p.kd.alpha}) + "\\n")
"""


def _run(cwd: Path, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    env = os.environ | {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    for var in ("DVC_ROOT", "DVC_EXP_BASELINE_REV", "DVC_EXP_NAME", "DVC_STAGE"):
        env.pop(var, None)
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert out.returncode == 0, f"{cmd} failed:\n{out.stdout}\n{out.stderr}"
    return out


def _snapshot(repo: Path) -> dict[str, bytes]:
    paths = ["params.yaml", "models/work/model.txt", "reports/work/metrics.json", "reports/check_params/passed.txt",
             "dvc.lock"]
    return {p: (repo / p).read_bytes() for p in paths if (repo / p).exists()}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("exp")
    (repo / "stages").mkdir()
    shutil.copy(ROOT / "stages" / "check_params.py", repo / "stages")
    shutil.copy(ROOT / "stages" / "_env.py", repo / "stages")  # the environment guard every stage imports first
    shutil.copy(ROOT / "params.yaml", repo)
    (repo / "work.py").write_text(WORK)
    check = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["check_params"]
    check["deps"] = ["stages/check_params.py"]  # the library is installed, not copied
    stages = {"check_params": check, "work": {
        "cmd": "python work.py", "deps": ["work.py", "reports/check_params/passed.txt"], "params": ["kd"],
        "outs": ["models/work"], "metrics": [{"reports/work/metrics.json": {"cache": False}}]}}
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    _run(repo, "git", "init", "-q")
    _run(repo, "git", "config", "user.email", "t@example.com")
    _run(repo, "git", "config", "user.name", "test")
    _run(repo, "dvc", "init", "-q")
    _run(repo, "dvc", "repro", "-q")
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-qm", "baseline")
    return repo


def test_failed_exp_run_keeps_params_and_outputs(repo):
    before = _snapshot(repo)
    assert before["models/work/model.txt"] == b"alpha=0.7\n"

    out = _run(repo, "dvc", "exp", "run", "-S", "kd.alpha=1.5", check=False)
    assert out.returncode != 0
    assert "kd.alpha: Input should be less than or equal to 1 (got 1.5)" in out.stderr
    assert "params.yaml restored: kd.alpha=0.7" in out.stderr
    assert "Running stage 'work'" not in out.stdout + out.stderr
    assert _snapshot(repo) == before  # params.yaml byte for byte, the cached and the git-tracked outputs
    assert _run(repo, "git", "status", "--porcelain").stdout == ""
    assert "up to date" in _run(repo, "dvc", "status").stdout


def test_failed_exp_run_keeps_uncommitted_edits(repo):
    params = repo / "params.yaml"
    committed = params.read_text()
    params.write_text(committed.replace("seed: 1234", "seed: 99"))  # the user's own, valid, uncommitted edit
    try:
        out = _run(repo, "dvc", "exp", "run", "-S", "kd.level_weights.frame=inf", check=False)
        assert out.returncode != 0 and "kd.level_weights.frame: Input should be a finite number" in out.stderr
        restored = yaml.safe_load(params.read_text())
        assert restored["seed"] == 99 and restored["kd"]["level_weights"]["frame"] == 0.5
        assert restored == yaml.safe_load(committed) | {"seed": 99}
        assert (repo / "models/work/model.txt").read_text() == "alpha=0.7\n"
    finally:
        params.write_text(committed)


def test_valid_exp_run_still_runs(repo):
    out = _run(repo, "dvc", "exp", "run", "-S", "kd.alpha=0.5", check=False)
    assert out.returncode == 0, out.stderr
    assert (repo / "models/work/model.txt").read_text() == "alpha=0.5\n"
    assert yaml.safe_load((repo / "params.yaml").read_text())["kd"]["alpha"] == 0.5


def test_every_stage_of_the_pipeline_runs_after_check_params():
    from dvc.repo import Repo

    graph = Repo(str(ROOT)).index.graph  # edges point from a stage to the stages it depends on
    stages = {s.addressing: s for s in graph.nodes}
    check = stages.pop("check_params")
    assert stages, "no stages found"
    late = sorted(name for name, stage in stages.items() if check not in nx.descendants(graph, stage))
    assert not late, f"these stages do not depend on check_params, so a bad parameter can delete their outputs: {late}"
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["check_params"]
    assert {"params.yaml": None} in spec["params"] and not spec.get("metrics")
