"""What every DVC stage script does around its own work: validate params, seed, track, report.

A stage body receives the validated params and returns its flat metrics; `run_stage` logs them
to MLflow and writes `reports/<stage>/metrics.json`. Expected failures (bad params, missing or
broken data) end with one readable message and exit code 1, not a traceback.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Callable

from signkd.errors import InputError
from signkd.params import Params, load_params
from signkd.seeding import set_seed
from signkd.tracking import stage_run, write_stage_metrics

StageBody = Callable[[Params], dict]


class StageError(InputError, RuntimeError):
    """A stage cannot proceed; the message says what is wrong and how to fix it."""


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Failures caused by input or configuration, each with a message that says the fix: every
    project error derives from `InputError`, so catching them imports no other module."""
    return (InputError, FileNotFoundError)


def run_stage(name: str, body: StageBody, params_path: str = "params.yaml") -> None:
    logging.basicConfig(level=logging.INFO, format=f"[{name}] %(levelname)s %(message)s")
    for noisy in ("alembic", "mlflow", "great_expectations", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        params = load_params(params_path)
        set_seed(params.seed)
        start = time.perf_counter()
        with stage_run(name, params):
            metrics = body(params)
            metrics["wall_time_s"] = round(time.perf_counter() - start, 2)
            write_stage_metrics(name, metrics)
    except _expected_errors() as err:
        print(f"\n[{name}] error: {err}", file=sys.stderr)
        sys.exit(1)
    logging.getLogger(name).info("done in %.1f s", metrics["wall_time_s"])
