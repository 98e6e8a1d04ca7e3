"""What every DVC stage script does around its own work: validate params, seed, track, report.

A stage body receives the validated params and returns its flat metrics; `run_stage` logs them
to MLflow and writes `reports/<stage>/metrics.json`. Expected failures (bad params, missing or
broken data) end with one readable message and exit code 1, not a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

from signkd.errors import InputError
from signkd.params import Params, load_params
from signkd.seeding import set_seed, set_torch_threads
from signkd.tracking import is_main_process, stage_run, write_stage_metrics

StageBody = Callable[[Params], dict]
# where training loops keep their end-of-epoch checkpoints, one folder per stage (signkd.training.resume);
# defined here, torch-free, because every stage clears its folder when it succeeds
RESUME_DIR = Path("models/.resume")

# What the one-line "done" summary shows of a stage's metrics, where present, in this order; a
# `dvc repro` then reads as one line per stage with its wall time and what it produced.
SUMMARY_FIELDS = (
    ("videos", "{:,} videos"), ("processed", "{:,} processed"), ("cached", "{:,} cached"), ("frames", "{:,} frames"),
    ("frames_per_second", "{:,.1f} frames/s"), ("num_samples", "{:,} samples checked"), ("num_failed", "{} failed"),
    ("best_epoch", "best epoch {}"), ("dev_wer", "dev WER {:.2f}"), ("test_wer", "test WER {:.2f}"),
    ("n_complete", "{} trials complete"), ("n_pruned", "{} pruned"), ("best_dev_wer", "best dev WER {:.2f}"),
    ("dev_wer_after", "corrected dev WER {:.2f}"), ("test_wer_after", "corrected test WER {:.2f}"),
    ("model_size_mb", "{:.2f} MB"),
)


def summary_line(metrics: dict) -> str:
    """`metrics` in a few words, e.g. "560 videos, 24,410 frames, 36.1 frames/s"."""
    parts = []
    for key, template in SUMMARY_FIELDS:
        value = metrics.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            parts.append(template.format(value))
    return ", ".join(parts)


class StageError(InputError, RuntimeError):
    """A stage cannot proceed; the message says what is wrong and how to fix it."""


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Failures caused by input or configuration, each with a message that says the fix: every
    project error derives from `InputError`, so catching them imports no other module."""
    return (InputError, FileNotFoundError)


def run_stage(name: str, body: StageBody, params_path: str = "params.yaml") -> None:
    """Under torchrun every rank runs the body (training is data-parallel), but only rank 0 opens
    the MLflow run and writes the metrics."""
    main = is_main_process()
    label = name if main else f"{name} rank {os.environ.get('RANK')}"
    logging.basicConfig(level=logging.INFO, format=f"[{label}] %(levelname)s %(message)s")
    for noisy in ("alembic", "mlflow", "great_expectations", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        params = load_params(params_path)
        set_seed(params.seed)
        set_torch_threads()
        start = time.perf_counter()
        with stage_run(name, params) if main else contextlib.nullcontext():
            metrics = body(params)
            metrics["wall_time_s"] = round(time.perf_counter() - start, 2)
            if main:
                write_stage_metrics(name, metrics)
                # the stage is done: a forced rerun (`dvc repro -f`) must train again, not resume
                shutil.rmtree(RESUME_DIR / name, ignore_errors=True)
    except _expected_errors() as err:
        print(f"\n[{name}] error: {err}", file=sys.stderr)
        sys.exit(1)
    summary = summary_line(metrics) if main else ""
    logging.getLogger(name).info("done in %.1f s%s", metrics["wall_time_s"], f": {summary}" if summary else "")
