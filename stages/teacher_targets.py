"""Stage teacher_targets: the teacher's outputs on every training video, which `tune` and
`distill` learn from. Out-of-fold by default (see signkd.kd.targets): the metrics show how
much softer they are than the final teacher's in-sample outputs. With `kd.teacher_targets:
online` distillation runs the teacher itself on each batch; the stored in-sample targets then only
give these statistics and `tune`'s study name its fingerprint."""

from pathlib import Path

import _env  # noqa: F401  (first: a clear message outside the virtual environment)

from signkd.experiment import load_splits, vocabulary
from signkd.kd.loss import attach_teacher_outputs
from signkd.kd.targets import TARGETS_DIR, out_of_fold_targets, save_targets, target_stats
from signkd.models.checkpoint import freeze, load_checkpoint
from signkd.params import Params
from signkd.stage import run_stage

STAGE = "teacher_targets"
OUT = Path("models/teacher_targets")


def main(params: Params) -> dict:
    vocab = vocabulary(params)
    teacher, teacher_cfg = load_checkpoint("models/train_teacher")
    modalities = teacher_cfg.architecture.inputs
    items = load_splits(params, vocab, modalities, splits=("train", "dev"))
    train_items = items["train"]
    store = OUT / TARGETS_DIR  # written utterance by utterance: a real corpus's targets never sit in memory
    attach_teacher_outputs(freeze(teacher), train_items, keep=modalities, store=store)
    metrics = {f"in_sample_{k}": v for k, v in target_stats(train_items).items()}
    metrics["method"] = params.kd.teacher_targets
    if params.kd.teacher_targets == "out_of_fold":
        fold_wers = out_of_fold_targets(params, vocab, train_items, items["dev"], teacher_cfg, params.kd.folds, store)
        metrics.update({f"fold{k + 1}_dev_wer": w for k, w in enumerate(fold_wers)})
        metrics.update({f"out_of_fold_{k}": v for k, v in target_stats(train_items).items()})
    save_targets(train_items, OUT)
    return metrics


if __name__ == "__main__":
    run_stage(STAGE, main)
