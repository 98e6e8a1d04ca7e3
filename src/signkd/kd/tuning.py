"""What `tune` searches and how: the settings marked `tuned`, TPE, and successive halving.

The search space is exactly the KD settings params.yaml marks `tuned` (signkd.kd.settings); the
others stay at their numbers in every trial. With none marked, there is nothing to search.

Multi-fidelity by successive halving (Optuna's asynchronous `SuccessiveHalvingPruner`), with
epochs as the resource: every trial trains `tune.min_epochs`; at min_epochs x reduction_factor^k
epochs a trial goes on only if its dev WER is in the best 1/reduction_factor of the trials that
reached that epoch. So a few promising trials train to `tune.epochs` (set it where distillation
peaks: best epochs lie at 60-90 of 120) while most stop early. Why not Hyperband: it hedges over
the first rung by running several halving brackets side by side, which needs many more trials
than the 6-24 run here for each bracket to rank anything; the first rung here is a known choice
(the dev WER after 10 epochs already orders clearly bad settings). Every trial keeps the full
run's learning-rate schedule (`tune.epochs`), so dev WERs at the same epoch are comparable.

TPE samples at random for its first `tune.n_startup_trials` trials and models the good region
after that (pruned trials count, at the epoch they reached). The study's name carries a
fingerprint of the teacher and its targets, so trials of a different teacher never mix.
"""

from __future__ import annotations

import hashlib
from contextlib import nullcontext
from pathlib import Path

import optuna

from signkd.kd.recipes import distill_student
from signkd.kd.settings import KDSettings, tuned_keys, with_values
from signkd.models.spec import ModelSpec
from signkd.params import Params


def search_space(trial: optuna.Trial, params: Params) -> KDSettings:
    """A trial's settings: temperature (log scale), alpha and level weights, each searched only
    where params marks it `tuned`."""
    t = params.tune
    ranges = {"temperature": (t.temperature_min, t.temperature_max, True), "alpha": (t.alpha_min, t.alpha_max, False)}
    values = {}
    for key in tuned_keys(params):
        low, high, log = ranges.get(key, (0.0, t.weight_max, False))
        values[key] = trial.suggest_float(f"kd.{key}", low, high, log=log)
    return with_values(params, values, source=f"tune trial {trial.number}")


def pruner(params: Params) -> optuna.pruners.SuccessiveHalvingPruner:
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=params.tune.min_epochs,
                                                  reduction_factor=params.tune.reduction_factor)


def pruning_callback(trial: optuna.Trial):
    """An `on_epoch` hook for `train`: report dev WER (epochs count from 1, the pruner's resource),
    stop the trial if the pruner says so."""

    def report(epoch: int, record: dict[str, float]) -> None:
        trial.report(record["dev_wer"], step=epoch + 1)
        if trial.should_prune():
            raise optuna.TrialPruned(f"dev WER {record['dev_wer']:.2f} after {epoch + 1} epochs")

    return report


def objective(params: Params, items: dict, vocab, teacher_cfg: ModelSpec, teacher, on_trial=None):
    """Optuna's objective: a distillation of up to `tune.epochs` epochs under the trial's settings,
    scored by its best dev WER and pruned by successive halving. `on_trial(trial, settings)` is
    entered around each trial (the stage opens a nested MLflow run there)."""

    def run(trial: optuna.Trial) -> float:
        kd = search_space(trial, params)
        with on_trial(trial, kd) if on_trial else nullcontext():
            result = distill_student(params, items, vocab, teacher_cfg, kd, epochs=params.tune.epochs,
                                     on_epoch=pruning_callback(trial), desc=f"trial {trial.number}", teacher=teacher).result
        return result.best_dev_wer

    return run


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
    """One study per teacher, targets, seed and search: the searched keys and the numbers the
    others are held at are part of it, so `-S kd.alpha=0.5` starts a study of its own."""
    searched = tuned_keys(params)
    held = with_values(params, dict.fromkeys(searched, 0.0)).record()
    fixed = ",".join(f"{key.removeprefix('kd.')}={value:g}" for key, value in held.items()
                     if key != "kd.recipe" and key.removeprefix("kd.") not in searched)
    return (f"kd-{params.kd.recipe}-{params.student.modality}-teacher{teacher_fingerprint}"
            f"-{params.kd.teacher_targets}-seed{params.seed}-search[{'+'.join(searched) or 'none'}]-fixed[{fixed}]")
