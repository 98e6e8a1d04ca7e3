"""Stage train_student: the keypoint-only student trained with CTC alone (the baseline KD must beat)."""

from signkd.experiment import (
    scoring_clean,
    keypoint_dim, load_splits, log_epoch, new_model, save_model, score_splits, student_config, train_config, vocabulary, write_curve,
    write_hypotheses,
)
from signkd.params import Params
from signkd.stage import run_stage
from signkd.training.trainer import train

STAGE = "train_student"


def main(params: Params) -> dict:
    vocab = vocabulary(params)
    items = load_splits(params, vocab, ("keypoints",))
    config = student_config(params, keypoint_dim(items), vocab)
    model = new_model(config, params.seed)
    result = train(model, items["train"], items["dev"], vocab, train_config(params, params.student), on_epoch=log_epoch, desc="student")
    write_curve(STAGE, result.history)
    metrics, hyps = score_splits(model, items, vocab, params)
    write_hypotheses(STAGE, items["test"], hyps["test"], "test", scoring_clean(params))
    return {**metrics, **save_model(STAGE, model, config), "best_epoch": result.best_epoch}


if __name__ == "__main__":
    run_stage(STAGE, main)
