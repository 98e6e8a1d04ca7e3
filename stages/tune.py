"""Stage tune: an Optuna study over the KD temperature, alpha and level weights (signkd.tuning),
each trial a short distillation run, pruned early when its dev WER lags.

Trials are nested MLflow runs under this stage's run. The study lives in an Optuna storage
(signkd.study): by default a SQLite file in models/tune, fresh on every run (models/tune is a DVC
output). Any SQLAlchemy URL in `OPTUNA_STORAGE` (or `tune.storage`), e.g.
`postgresql+psycopg://host/db`, makes the study shared: every worker started with the same params
adds `tune.n_trials` trials to one study of the same name and reports the best of all trials so
far. Workers then sample with their own random seed, so they do not propose the same temperatures.
"""

import _env  # noqa: F401  (first: a clear message outside the virtual environment)

import logging
from pathlib import Path

import mlflow
import optuna

from signkd.distillation import distill_student, load_distillation_data
from signkd.experiment import vocabulary
from signkd.io import write_json
from signkd.models.checkpoint import WEIGHTS, freeze, load_checkpoint
from signkd.params import Params
from signkd.stage import run_stage
from signkd.study import open_study, shown, storage_url
from signkd.teacher_targets import TARGETS_DIR
from signkd.tracking import run_tags
from signkd.tuning import fingerprint, level_weights, pruner, pruning_callback, search_space, study_name

STAGE = "tune"
OUT = Path("models/tune")
TEACHER = Path("models/train_teacher")
TARGETS = Path("models/teacher_targets")
log = logging.getLogger(STAGE)


def tune_study(params: Params) -> optuna.Study:
    """This stage's study: local and seeded, or shared (then unseeded) when a storage URL is set.
    Its name carries the teacher's and its targets' fingerprint: another teacher, another study."""
    local = f"sqlite:///{(OUT / 'study.db').resolve()}"
    url = storage_url(params.tune.storage, local)
    name = study_name(params, fingerprint(TEACHER / WEIGHTS, TARGETS / TARGETS_DIR))
    if url != local:
        log.info("joining the shared study %s at %s", name, shown(url))
    return open_study(name, url, seed=params.seed if url == local else None, pruner=pruner(params),
                      n_startup_trials=params.tune.n_startup_trials)


def main(params: Params) -> dict:
    OUT.mkdir(parents=True, exist_ok=True)
    study = tune_study(params)  # first: a wrong URL fails before any data is loaded
    vocab = vocabulary(params)
    teacher, teacher_cfg = load_checkpoint("models/train_teacher")
    teacher = freeze(teacher)
    items = load_distillation_data(params, vocab, Path("models/teacher_targets"))

    def objective(trial: optuna.Trial) -> float:
        chosen = search_space(trial, params)
        tags = {"stage": STAGE, "trial": str(trial.number), **run_tags()}
        with mlflow.start_run(run_name=f"tune-trial-{trial.number}", nested=True, tags=tags):
            mlflow.log_params({**chosen, "tune.epochs": params.tune.epochs})
            result = distill_student(
                params, items, vocab, teacher_cfg, chosen["kd.temperature"], epochs=params.tune.epochs,
                on_epoch=pruning_callback(trial), desc=f"trial {trial.number}", alpha=chosen["kd.alpha"],
                level_weights=level_weights(chosen, params), teacher=teacher,
            ).result
            mlflow.log_metric("dev_wer", result.best_dev_wer)
        return result.best_dev_wer

    before = len(study.trials)
    study.optimize(objective, n_trials=params.tune.n_trials)
    best = {**study.best_params, "dev_wer": study.best_value, "trial": study.best_trial.number}
    write_json(OUT / "best_params.json", best)
    mlflow.log_params({f"best.{k}": v for k, v in study.best_params.items()})
    # a shared study also holds other workers' trials, some still running (no value yet)
    trials = [{"trial": t.number, "state": t.state.name, **t.params, "dev_wer": t.value} for t in study.trials]
    write_json(Path("reports") / STAGE / "trials.json", trials)
    states = [t.state for t in study.trials]
    return {"best_temperature": best["kd.temperature"], "best_alpha": best["kd.alpha"], "best_dev_wer": best["dev_wer"],
            "n_trials": len(trials), "n_trials_before": before,
            "n_pruned": sum(s == optuna.trial.TrialState.PRUNED for s in states),
            "n_complete": sum(s == optuna.trial.TrialState.COMPLETE for s in states)}


if __name__ == "__main__":
    run_stage(STAGE, main)
