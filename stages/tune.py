"""Stage tune: an Optuna study over the KD temperature, each trial a short distillation run.

Trials are nested MLflow runs under this stage's run; the study lives in an Optuna storage
(SQLite here; point `OPTUNA_STORAGE` at PostgreSQL to share one study between machines).
"""

import os
from pathlib import Path

import mlflow
import optuna

from signkd.experiment import distill_student, load_distillation_data, vocabulary
from signkd.io import write_json
from signkd.models.checkpoint import freeze, load_checkpoint
from signkd.params import Params
from signkd.stage import run_stage

STAGE = "tune"
OUT = Path("models/tune")


def main(params: Params) -> dict:
    vocab = vocabulary(params)
    teacher, teacher_cfg = load_checkpoint("models/train_teacher")
    items = load_distillation_data(params, vocab, freeze(teacher))
    OUT.mkdir(parents=True, exist_ok=True)
    storage = os.environ.get("OPTUNA_STORAGE") or f"sqlite:///{(OUT / 'study.db').resolve()}"
    # models/tune is a DVC output, so the local study starts empty on every run of the stage;
    # a shared storage (OPTUNA_STORAGE) lets several workers add trials to one study.
    study = optuna.create_study(
        study_name=f"kd-temperature-alpha{params.kd.alpha}-seed{params.seed}",
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=params.seed),
        storage=storage,
        load_if_exists=True,
    )

    def objective(trial: optuna.Trial) -> float:
        temp = trial.suggest_float("kd.temperature", params.tune.temperature_min, params.tune.temperature_max, log=True)
        with mlflow.start_run(run_name=f"tune-trial-{trial.number}", nested=True, tags={"stage": STAGE, "trial": str(trial.number)}):
            mlflow.log_params({"kd.temperature": temp, "kd.alpha": params.kd.alpha, "tune.epochs": params.tune.epochs})
            _, result, _ = distill_student(
                params, items, vocab, teacher_cfg, temp, epochs=params.tune.epochs, on_epoch=None, desc=f"trial {trial.number}"
            )
            mlflow.log_metric("dev_wer", result.best_dev_wer)
        return result.best_dev_wer

    study.optimize(objective, n_trials=params.tune.n_trials)
    best = {"kd.temperature": study.best_params["kd.temperature"], "dev_wer": study.best_value, "trial": study.best_trial.number}
    write_json(OUT / "best_params.json", best)
    mlflow.log_params({"best.kd.temperature": best["kd.temperature"]})
    trials = [{"trial": t.number, "temperature": t.params["kd.temperature"], "dev_wer": t.value} for t in study.trials]
    write_json(Path("reports") / STAGE / "trials.json", trials)
    return {"best_temperature": best["kd.temperature"], "best_dev_wer": best["dev_wer"], "n_trials": len(study.trials)}


if __name__ == "__main__":
    run_stage(STAGE, main)
