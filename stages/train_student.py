"""Stage train_student: the single-modal student (`student.modality`) trained with CTC alone:
the baseline distillation must beat."""

import _env  # noqa: F401  (first: a clear message outside the virtual environment)

from signkd.experiment import (
    finish_training,
    keypoint_dim,
    load_splits,
    log_epoch,
    new_model,
    student_config,
    train_config,
    vocabulary,
)
from signkd.params import Params
from signkd.stage import run_stage
from signkd.training.resume import resume_path
from signkd.training.trainer import train

STAGE = "train_student"


def main(params: Params) -> dict:
    vocab = vocabulary(params)
    items = load_splits(params, vocab, (params.student.modality,), student=True)
    config = student_config(params, keypoint_dim(params), vocab)
    model = new_model(config, params.seed)
    result = train(
        model, items["train"], items["dev"], vocab, train_config(params, params.student), on_epoch=log_epoch, desc="student",
        checkpoint=resume_path(STAGE, "student"),
    )
    return finish_training(STAGE, params, model, config, items, vocab, result)


if __name__ == "__main__":
    run_stage(STAGE, main)
