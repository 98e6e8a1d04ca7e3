"""Stage train_teacher: the multi-modal (video + keypoints + flow) fusion teacher, trained with CTC."""

import _env  # noqa: F401  (first: a clear message outside the virtual environment)

from signkd.experiment import (
    finish_training,
    keypoint_dim,
    load_splits,
    log_epoch,
    new_model,
    teacher_config,
    train_config,
    vocabulary,
)
from signkd.params import Params
from signkd.stage import run_stage
from signkd.training.resume import resume_path
from signkd.training.trainer import train

STAGE = "train_teacher"


def main(params: Params) -> dict:
    vocab = vocabulary(params)
    items = load_splits(params, vocab, tuple(params.teacher.modalities))
    config = teacher_config(params, keypoint_dim(params), vocab)
    model = new_model(config, params.seed)
    result = train(
        model, items["train"], items["dev"], vocab, train_config(params, params.teacher), on_epoch=log_epoch, desc="teacher",
        checkpoint=resume_path(STAGE, "teacher"),
    )
    return finish_training(STAGE, params, model, config, items, vocab, result)


if __name__ == "__main__":
    run_stage(STAGE, main)
