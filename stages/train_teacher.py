"""Stage train_teacher: the multi-modal (video + keypoints + flow) fusion teacher, trained with CTC."""

from signkd.experiment import (
    finish_training, keypoint_dim, load_splits, log_epoch, new_model, teacher_config, train_config, vocabulary,
)
from signkd.models.recognizer import MODALITIES
from signkd.params import Params
from signkd.stage import run_stage
from signkd.training.trainer import train

STAGE = "train_teacher"


def main(params: Params) -> dict:
    vocab = vocabulary(params)
    items = load_splits(params, vocab, MODALITIES)
    config = teacher_config(params, keypoint_dim(items), vocab)
    model = new_model(config, params.seed)
    result = train(
        model, items["train"], items["dev"], vocab, train_config(params, params.teacher), on_epoch=log_epoch, desc="teacher"
    )
    return {**finish_training(STAGE, params, model, config, items, vocab, result), "fusion": params.teacher.fusion}


if __name__ == "__main__":
    run_stage(STAGE, main)
