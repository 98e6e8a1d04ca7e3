"""Stage train_teacher: the multi-modal (video + keypoints + flow) fusion teacher, trained with CTC."""

from signkd.experiment import (
    scoring_clean,
    keypoint_dim, load_splits, log_epoch, new_model, save_model, score_splits, teacher_config, train_config, vocabulary,
    write_curve, write_hypotheses,
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
    result = train(model, items["train"], items["dev"], vocab, train_config(params, params.teacher), on_epoch=log_epoch, desc="teacher")
    write_curve(STAGE, result.history)
    metrics, hyps = score_splits(model, items, vocab, params)
    write_hypotheses(STAGE, items["test"], hyps["test"], "test", scoring_clean(params))
    return {**metrics, **save_model(STAGE, model, config), "best_epoch": result.best_epoch, "fusion": params.teacher.fusion}


if __name__ == "__main__":
    run_stage(STAGE, main)
