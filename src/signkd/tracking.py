"""Experiment tracking: one MLflow run per stage, plus DVC's flat metrics.json.

The MLflow store is SQLite at the repository root. The root comes from `DVC_ROOT` (set by DVC
for every stage, also in `dvc exp run --temp/--queue` copies), so experiments run elsewhere
still log to the user's one store and show up in `mlflow ui` started at the root.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from pathlib import Path
from typing import Iterator

from signkd.io import write_json
from signkd.params import Params, flatten

EXPERIMENT = "signkd"


def repo_root() -> Path:
    """DVC_ROOT if DVC runs us, else the nearest ancestor of the cwd holding dvc.yaml."""
    env = os.environ.get("DVC_ROOT")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        if (d / "dvc.yaml").is_file():
            return d
    return here


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / 'mlflow.db'}"


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=Path.cwd())
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _dvc_experiment_name() -> str | None:
    return os.environ.get("DVC_EXP_NAME")


@contextlib.contextmanager
def stage_run(stage: str, params: Params, run_name: str | None = None, nested: bool = False) -> Iterator["mlflow.ActiveRun"]:  # noqa: F821
    """Start an MLflow run tagged with the stage and git commit, with every param logged."""
    import mlflow

    logging.getLogger("alembic").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(tracking_uri())
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        # Artifacts beside the store at the root, also for `dvc exp run --temp` copies.
        mlflow.create_experiment(EXPERIMENT, artifact_location=(repo_root() / "mlartifacts").as_uri())
    mlflow.set_experiment(EXPERIMENT)
    tags = {"stage": stage, "git_commit": git_commit(), "dataset": params.data.dataset}
    if exp := _dvc_experiment_name():
        tags["dvc_experiment"] = exp
    with mlflow.start_run(run_name=run_name or stage, tags=tags, nested=nested) as run:
        mlflow.log_params({k: _param_value(v) for k, v in flatten(params).items()})
        yield run


def _param_value(value: object) -> object:
    return "" if value is None else value


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    import mlflow

    mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


def write_stage_metrics(stage: str, metrics: dict[str, float | int | str], reports_dir: str | Path = "reports") -> Path:
    """reports/<stage>/metrics.json with flat keys (WER in percent, sizes in MB), logged to MLflow too."""
    import mlflow

    path = Path(reports_dir) / stage / "metrics.json"
    write_json(path, metrics)
    numeric = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if mlflow.active_run() is not None:
        mlflow.log_metrics(numeric)
        mlflow.log_artifact(str(path))
    return path


def flat_metrics(stats: dict, prefix: str = "") -> dict[str, float | int | str]:
    """Nested stats from a library call -> flat `a_b_c` keys, keeping numbers and short strings."""
    out: dict[str, float | int | str] = {}
    for k, v in stats.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat_metrics(v, f"{key}_"))
        elif isinstance(v, bool):
            out[key] = int(v)
        elif isinstance(v, (int, float)) or (isinstance(v, str) and len(v) <= 200):
            out[key] = v
    return out
