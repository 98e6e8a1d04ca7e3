"""Experiment tracking: one MLflow run per stage, plus DVC's flat metrics.json.

The MLflow store is SQLite at the repository root. The root comes from `DVC_ROOT` (set by DVC
for every stage, also in `dvc exp run --temp/--queue` copies), so experiments run elsewhere
still log to the user's one store and show up in `mlflow ui` started at the root.

`prepare_store` runs before every stage's run, under an exclusive lock on `mlflow.db.lock`:
- it creates the store and the experiment once: two processes creating a fresh SQLite store at
  the same moment both run MLflow's migrations and one fails (`table ... already exists`), which
  lost runs under `dvc queue start -j 2`;
- it ends runs whose process is gone (a stage killed with SIGKILL leaves its run RUNNING for
  ever) as KILLED: each run records its host, pid and process start time;
- a repository that was copied or moved keeps a store whose experiment points at the old tree's
  `mlartifacts/` (MLflow stores absolute artifact locations); its locations are rebased onto
  this tree, so artifacts are never written into another checkout.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Iterator, cast

from signkd.errors import InputError
from signkd.io import write_json
from signkd.params import Params, flatten

if TYPE_CHECKING:  # imported where used: it is slow to import
    import mlflow

EXPERIMENT = "signkd"
ARTIFACTS_DIR = "mlartifacts"
HOST_TAG, PID_TAG, STARTED_TAG = "signkd.host", "signkd.pid", "signkd.process_started"
log = logging.getLogger(__name__)


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


def is_main_process() -> bool:
    """Whether this process writes metrics, checkpoints and MLflow runs: always, except under
    `torchrun` with several processes, where only rank 0 does (RANK is torchrun's variable)."""
    return int(os.environ.get("RANK", "0")) == 0


def _dvc_experiment_name() -> str | None:
    return os.environ.get("DVC_EXP_NAME")


def run_tags() -> dict[str, str]:
    """The tags that tie a run to its code and experiment (also for nested runs, which MLflow
    does not let inherit their parent's tags)."""
    exp = _dvc_experiment_name()
    return {"git_commit": git_commit(), **({"dvc_experiment": exp} if exp else {})}


@contextlib.contextmanager
def stage_run(stage: str, params: Params, run_name: str | None = None, nested: bool = False) -> Iterator[mlflow.ActiveRun]:
    """Start an MLflow run tagged with the stage and git commit, with every param logged."""
    import mlflow

    logging.getLogger("alembic").setLevel(logging.WARNING)
    experiment_id = prepare_store()
    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_experiment(experiment_id=experiment_id)
    tags = {"stage": stage, "git_commit": git_commit(), "dataset": params.data.dataset, **_process_tags()}
    if exp := _dvc_experiment_name():
        tags["dvc_experiment"] = exp
    with mlflow.start_run(run_name=run_name or stage, tags=tags, nested=nested) as run:
        mlflow.log_params({k: _param_value(v) for k, v in flatten(params).items()})
        yield run


def _sqlite_file(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


@contextlib.contextmanager
def _store_lock(db: Path | None) -> Iterator[None]:
    """Exclusive lock beside a SQLite store (POSIX flock; released if the process dies)."""
    fcntl: ModuleType | None
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        fcntl = None
    if db is None or fcntl is None:
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _client(uri: str):
    """An MLflow client of the store; a store whose schema this MLflow does not know (made by a
    newer MLflow, e.g. another install's, or an older one) is one line saying what to do, not
    MLflow's advice to upgrade, which fails on a newer store."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        return MlflowClient(uri)
    except MlflowException as err:
        if "database schema" not in str(err):
            raise
        import mlflow

        raise InputError(f"the MLflow store {uri} has a schema that MLflow {mlflow.__version__} (this environment's) "
                         "does not expect: it was made by another MLflow version. Use the environment that made it, "
                         "or move the file aside to start a new store; if it is older, back it up and run "
                         f"`mlflow db upgrade {uri}`") from None


def prepare_store() -> str:
    """Create the store and experiment once, rebase a copied store, end dead runs (see the module
    docstring); returns the experiment id. Safe to call from many processes at once."""
    logging.getLogger("alembic").setLevel(logging.WARNING)
    uri = tracking_uri()
    db = _sqlite_file(uri)
    with _store_lock(db):
        client = _client(uri)  # opening a fresh SQLite store creates its tables: inside the lock
        # a local store keeps artifacts beside it at the root (also for `dvc exp run --temp` copies);
        # a tracking server decides itself (with --serve-artifacts it proxies them to its own store)
        artifacts = None if uri.startswith(("http://", "https://")) else (repo_root() / ARTIFACTS_DIR).as_uri()
        experiment = client.get_experiment_by_name(EXPERIMENT)
        if experiment is None:
            experiment_id = _create_experiment(client, artifacts)
        else:
            experiment_id = experiment.experiment_id
            own_store = db is not None and db.resolve() == (repo_root() / "mlflow.db").resolve()
            old = (experiment.artifact_location or "").rstrip("/")
            if own_store and old != artifacts and old.endswith("/" + ARTIFACTS_DIR):
                _rebase_artifacts(client, experiment_id, old, cast(str, artifacts))  # own_store: a local store
        end_dead_runs(client, experiment_id)
    return experiment_id


def _create_experiment(client, artifacts: str | None) -> str:
    """Create the experiment; on a server another process may do so at the same moment (the file
    lock covers only SQLite), and then its experiment is used."""
    from mlflow.exceptions import MlflowException

    try:
        return client.create_experiment(EXPERIMENT, artifact_location=artifacts)
    except MlflowException as err:
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        return client.get_experiment_by_name(EXPERIMENT).experiment_id


def _rebase_artifacts(client, experiment_id: str, old: str, new: str) -> None:
    """Point the experiment and its runs at `new` instead of `old` (this tree's mlartifacts/, after the
    repository was copied or moved). MLflow has no API to change a location, so its own ORM does it."""
    from mlflow.store.tracking.dbmodels.models import SqlExperiment, SqlRun

    store = client._tracking_client.store
    with store.ManagedSessionMaker(read_only=False) as session:
        session.query(SqlExperiment).filter(SqlExperiment.experiment_id == int(experiment_id)).update(
            {"artifact_location": new})
        for run in session.query(SqlRun).filter(SqlRun.experiment_id == int(experiment_id)):
            if run.artifact_uri and run.artifact_uri.startswith(old + "/"):
                run.artifact_uri = new + run.artifact_uri[len(old):]
    log.info("the repository moved: MLflow artifacts now go to %s (were %s)", new, old)


def _process_tags() -> dict[str, str]:
    import psutil

    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid()),
            STARTED_TAG: repr(psutil.Process().create_time())}


def _process_alive(pid: str, started: str) -> bool:
    """Whether the process that started a run still runs (a reused pid has another start time)."""
    import psutil

    try:
        return abs(psutil.Process(int(pid)).create_time() - float(started)) < 1e-3
    except (psutil.Error, ValueError):
        return False


def end_dead_runs(client, experiment_id: str) -> list[str]:
    """Mark KILLED the RUNNING runs of this host whose process is gone, and RUNNING nested runs whose
    parent has ended; returns their ids. Runs of other hosts are left alone (their pids mean nothing here)."""
    from mlflow.entities import RunStatus

    running = client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=5000)
    host = socket.gethostname()
    dead = [r for r in running if r.data.tags.get(HOST_TAG) == host
            and not _process_alive(r.data.tags.get(PID_TAG, ""), r.data.tags.get(STARTED_TAG, ""))]
    dead_ids = {r.info.run_id for r in dead}
    for run in running:
        parent = run.data.tags.get("mlflow.parentRunId")
        if run.info.run_id in dead_ids or parent is None or HOST_TAG in run.data.tags:
            continue
        if parent in dead_ids or client.get_run(parent).info.status != "RUNNING":
            dead.append(run)
            dead_ids.add(run.info.run_id)
    for run in dead:
        client.set_tag(run.info.run_id, "signkd.ended_by", "its process was gone when the next stage started")
        client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
        log.warning("MLflow run %s (%s) was left RUNNING by a killed process: marked KILLED",
                    run.info.run_id, run.data.tags.get("stage", run.info.run_name))
    return sorted(dead_ids)


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
