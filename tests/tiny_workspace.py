"""A tiny real workspace built by the real stage runner: params.yaml, data, features and whatever
stages a test needs (e.g. a trained teacher for `tune`), so that a test can start real stage
processes on it without running `dvc repro`."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from tests.custom_data import make_custom, render_clips

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "data": {"synthetic": {"num_train": 3, "num_dev": 1, "num_test": 1, "num_signers": 1, "min_signs": 1, "max_signs": 1}},
    "keypoints": {"workers": 1}, "flow": {"workers": 1},
    "teacher": {"epochs": 1}, "student": {"epochs": 1}, "kd": {"epochs": 1, "teacher_targets": "online"},
    "tune": {"n_trials": 2, "n_startup_trials": 1, "epochs": 1, "min_epochs": 1},
}


def merge(base: dict, over: dict) -> dict:
    for k, v in over.items():
        base[k] = merge(base.get(k, {}), v) if isinstance(v, dict) else v
    return base


def stage_main(name: str):
    """The `main` of stages/<name>.py (stage scripts are not a package; like `python
    stages/x.py`, their folder goes on sys.path for the `_env` guard they import first)."""
    if str(ROOT / "stages") not in sys.path:
        sys.path.insert(0, str(ROOT / "stages"))
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def write_params(dest: Path, overrides: dict | None = None) -> dict:
    params = merge(merge(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY), overrides or {})
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


def build(dest: Path, stages: tuple[str, ...], overrides: dict | None = None) -> Path:
    """Run `stages` in order in `dest` (in this process, through `run_stage`); MLflow logs to
    dest/mlflow.db, which therefore exists before any parallel writer starts."""
    import torch

    from signkd.stage import run_stage

    write_params(dest, overrides)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(dest)
        mp.delenv("DVC_ROOT", raising=False)
        mp.delenv("OPTUNA_STORAGE", raising=False)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{dest / 'mlflow.db'}")
        try:
            for name in stages:
                run_stage(name, stage_main(name))
        finally:
            torch.set_num_threads(threads)
    return dest


def custom_workspace(dest: Path, stages: tuple[str, ...], overrides: dict | None = None) -> Path:
    """`build` on the custom dataset: five rendered clips as video files, precomputed keypoints for
    all of them, so no MediaPipe run (the fastest real workspace for tests that need a teacher)."""
    rendered = render_clips(dest / "_render", num_train=3, num_dev=1, num_test=1, max_signs=1)
    make_custom(dest / "data/raw/custom", rendered, keypoints_every=1)
    shutil.rmtree(dest / "_render")
    custom = {"data": {"dataset": "custom", "custom": {"annotations": "annotations.csv", "keypoints_dir": "keypoints"}}}
    return build(dest, stages, merge(custom, overrides or {}))
