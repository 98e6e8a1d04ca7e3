"""What `tune` searches and how: the KD search space, TPE, and pruning on per-epoch dev WER.

Each trial is a short distillation run (`tune.epochs`). TPE samples at random for its first
`tune.n_startup_trials` trials and models the good region after that, so `n_trials` must exceed
the start-up count for any TPE step to happen; the median pruner stops a trial whose dev WER at
an epoch is worse than the median of earlier trials at that epoch. The study's name carries a
fingerprint of the teacher and its targets, so trials of a different teacher never mix.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import optuna

from signkd.params import Params
from signkd.training.kd import LEVELS


def search_space(trial: optuna.Trial, params: Params) -> dict:
    """Temperature (log scale), alpha, and -- where the recipe has them -- the level weights."""
    t = params.tune
    chosen = {
        "kd.temperature": trial.suggest_float("kd.temperature", t.temperature_min, t.temperature_max, log=True),
        "kd.alpha": trial.suggest_float("kd.alpha", t.alpha_min, t.alpha_max),
    }
    if params.kd.recipe != "logits":
        for level in LEVELS:
            chosen[f"kd.level_weights.{level}"] = trial.suggest_float(f"kd.level_weights.{level}", 0.0, t.weight_max)
    return chosen


def level_weights(chosen: dict, params: Params) -> dict[str, float]:
    defaults = params.kd.level_weights.model_dump()
    return {level: float(chosen.get(f"kd.level_weights.{level}", defaults[level])) for level in LEVELS}


def pruner(params: Params) -> optuna.pruners.MedianPruner:
    return optuna.pruners.MedianPruner(n_startup_trials=params.tune.n_startup_trials,
                                       n_warmup_steps=max(1, params.tune.epochs // 4))


def pruning_callback(trial: optuna.Trial):
    """An `on_epoch` hook for `train`: report dev WER, stop the trial if the pruner says so."""

    def report(epoch: int, record: dict[str, float]) -> None:
        trial.report(record["dev_wer"], step=epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"dev WER {record['dev_wer']:.2f} at epoch {epoch}")

    return report


def fingerprint(*paths: Path) -> str:
    """First 12 hex digits of the SHA-256 of the given files, or of a folder's files in name order
    (the teacher and its targets)."""
    digest = hashlib.sha256()
    files = [f for p in paths for f in (sorted(Path(p).iterdir()) if Path(p).is_dir() else [Path(p)])]
    for path in files:
        digest.update(path.name.encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:12]


def study_name(params: Params, teacher_fingerprint: str) -> str:
    return (f"kd-{params.kd.recipe}-{params.student.modality}-teacher{teacher_fingerprint}"
            f"-{params.kd.teacher_targets}-seed{params.seed}")


TUNED = Path("models/tune/best_params.json")


def kd_settings(params: Params, tuned: Path = TUNED) -> dict:
    """The temperature, alpha and level weights distillation uses: the best trial's when
    `kd.use_tuned` is on (missing keys fall back to params), else params.yaml's (so
    `-S kd.temperature=...` is respected with `kd.use_tuned: false`)."""
    import json

    chosen: dict = {}
    if params.kd.use_tuned:
        if not tuned.is_file():
            raise FileNotFoundError(f"{tuned} missing: run `dvc repro tune`, or set kd.use_tuned: false")
        chosen = json.loads(tuned.read_text(encoding="utf-8"))
    return {
        "temperature": float(chosen.get("kd.temperature", params.kd.temperature)),
        "alpha": float(chosen.get("kd.alpha", params.kd.alpha)),
        "level_weights": level_weights(chosen, params),
        "source": f"tuned ({tuned})" if params.kd.use_tuned else "params.yaml",
    }
