"""Stage tune: an Optuna study over the KD settings params.yaml marks `tuned` (signkd.kd.tuning),
each trial a distillation stopped early by successive halving when its dev WER lags.

Trials are nested MLflow runs under this stage's run. The study lives in an Optuna storage
(signkd.study): by default a SQLite file in models/tune, fresh on every run (models/tune is a DVC
output). Any SQLAlchemy URL in `OPTUNA_STORAGE` (or `tune.storage`), e.g.
`postgresql+psycopg://host/db`, makes the study shared: every worker started with the same params
adds `tune.n_trials` trials to one study of the same name and reports the best of all trials so
far. Workers then sample with their own random seed, so they do not propose the same temperatures.
With no setting marked `tuned`, there is nothing to search: the stage says so and writes an empty
best_params.json.
"""

import contextlib
import logging
from pathlib import Path

import _env  # noqa: F401  (first: a clear message outside the virtual environment)
import mlflow
import optuna

from signkd.experiment import vocabulary
from signkd.io import write_json
from signkd.kd.recipes import load_distillation_data
from signkd.kd.settings import tuned_keys
from signkd.kd.targets import TARGETS_DIR
from signkd.kd.tuning import fingerprint, objective, pruner, study_name
from signkd.models.checkpoint import WEIGHTS, freeze, load_checkpoint
from signkd.params import Params
from signkd.stage import run_stage
from signkd.study import open_study, shown, storage_url
from signkd.tracking import run_tags

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


def trial_runs(params: Params):
    """A nested MLflow run per trial, with the settings it distils with; a pruned trial's run ends
    FINISHED with the tag optuna_state=PRUNED (pruning is the search working, not a failure)."""

    @contextlib.contextmanager
    def start(trial: optuna.Trial, kd):
        pruned = None
        tags = {"stage": STAGE, "trial": str(trial.number), **run_tags()}
        with mlflow.start_run(run_name=f"tune-trial-{trial.number}", nested=True, tags=tags):
            mlflow.log_params({**kd.record(), "tune.epochs": params.tune.epochs})
            try:
                yield
            except optuna.TrialPruned as err:
                mlflow.set_tag("optuna_state", "PRUNED")
                pruned = err
        if pruned is not None:
            raise pruned

    return start


def main(params: Params) -> dict:
    OUT.mkdir(parents=True, exist_ok=True)
    searched = tuned_keys(params)
    if not searched:
        log.info("no kd setting is `tuned` in params.yaml: nothing to search")
        write_json(OUT / "best_params.json", {})
        write_json(Path("reports") / STAGE / "trials.json", [])
        return {"searched": "", "n_trials": 0}
    study = tune_study(params)  # first: a wrong URL fails before any data is loaded
    vocab = vocabulary(params)
    teacher, teacher_cfg = load_checkpoint(TEACHER)
    items = load_distillation_data(params, vocab, TARGETS)
    before = len(study.trials)
    study.optimize(objective(params, items, vocab, teacher_cfg, freeze(teacher), trial_runs(params)), n_trials=params.tune.n_trials)
    best = {**study.best_params, "dev_wer": study.best_value, "trial": study.best_trial.number}
    write_json(OUT / "best_params.json", best)
    mlflow.log_params({f"best.{k}": v for k, v in study.best_params.items()})
    # a shared study also holds other workers' trials, some still running (no value yet)
    trials = [{"trial": t.number, "state": t.state.name, **t.params, "dev_wer": t.value,
               "epochs": max(t.intermediate_values, default=0)} for t in study.trials]
    write_json(Path("reports") / STAGE / "trials.json", trials)
    states = [t.state for t in study.trials]
    return {"searched": "+".join(searched), **{f"best_{k.removeprefix('kd.')}": v for k, v in study.best_params.items()},
            "best_dev_wer": best["dev_wer"], "n_trials": len(trials), "n_trials_before": before,
            "n_pruned": sum(s == optuna.trial.TrialState.PRUNED for s in states),
            "n_complete": sum(s == optuna.trial.TrialState.COMPLETE for s in states),
            "epochs_trained": sum(max(t.intermediate_values, default=0) for t in study.trials[before:])}


if __name__ == "__main__":
    run_stage(STAGE, main)
