"""Stage distill: hierarchical KD from the frozen multi-modal teacher into the keypoint-only student."""

import json
from pathlib import Path

from signkd.experiment import distill_student, finish_training, load_distillation_data, vocabulary
from signkd.models.checkpoint import freeze, load_checkpoint
from signkd.params import Params
from signkd.stage import run_stage

STAGE = "distill"
TUNED = Path("models/tune/best_params.json")


def temperature(params: Params) -> float:
    if not params.kd.use_tuned_temperature:
        return params.kd.temperature
    if not TUNED.is_file():
        raise FileNotFoundError(f"{TUNED} missing: run `dvc repro tune`, or set kd.use_tuned_temperature: false")
    return float(json.loads(TUNED.read_text())["kd.temperature"])


def main(params: Params) -> dict:
    import mlflow

    vocab = vocabulary(params)
    teacher, teacher_cfg = load_checkpoint("models/train_teacher")
    items = load_distillation_data(params, vocab, freeze(teacher))
    temp = temperature(params)
    mlflow.log_param("kd.temperature_used", temp)
    student, result, config = distill_student(params, items, vocab, teacher_cfg, temp)
    return {**finish_training(STAGE, params, student, config, items, vocab, result), "temperature": temp}


if __name__ == "__main__":
    run_stage(STAGE, main)
