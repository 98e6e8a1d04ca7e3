"""Stage distill: knowledge distillation from the frozen multi-modal teacher into the
single-modal student, by the recipe `kd.recipe` (see signkd.kd.recipes)."""

from pathlib import Path

import _env  # noqa: F401  (first: a clear message outside the virtual environment)

from signkd.experiment import finish_training, vocabulary
from signkd.kd.recipes import distill_student, load_distillation_data
from signkd.kd.settings import resolve
from signkd.models.checkpoint import freeze, load_checkpoint
from signkd.params import Params
from signkd.stage import run_stage

STAGE = "distill"


def main(params: Params) -> dict:
    import mlflow

    vocab = vocabulary(params)
    teacher, teacher_cfg = load_checkpoint("models/train_teacher")
    items = load_distillation_data(params, vocab, Path("models/teacher_targets"))
    kd = resolve(params)  # the one set of KD settings, for the assistant (chain) and the student
    mlflow.log_params({f"{k}_used": v for k, v in kd.record().items()} | {"kd.source": kd.source})
    out = distill_student(params, items, vocab, teacher_cfg, kd, teacher=freeze(teacher), resume_stage=STAGE)
    metrics = finish_training(STAGE, params, out.student, out.config, items, vocab, out.result)
    if out.assistant_dev_wer is not None:
        metrics["assistant_dev_wer"] = out.assistant_dev_wer
    return {**metrics, "temperature": kd.temperature, "alpha": kd.alpha,
            **{f"level_weight_{level}": w for level, w in kd.level_weights.items()}}


if __name__ == "__main__":
    run_stage(STAGE, main)
