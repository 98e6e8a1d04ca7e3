"""Teacher targets for distillation that are not memorised one-hots.

A teacher trained on the 160 training sentences learns them by heart (train CTC loss near 0):
its outputs on those very videos are near one-hot, so distilling from them passes on little
more than the labels. Out-of-fold targets fix this: the training set is split into k folds, a
teacher of the same configuration is trained on k-1 folds (model selection on dev), and its
outputs on the held-out fold become that fold's targets -- each video's targets come from a
teacher that never saw it, as the student's test videos will be unseen. It costs k - 1 extra
teacher trainings, paid once in the `teacher_targets` stage; `kd.teacher_targets: full` keeps
the cheap in-sample targets of the final teacher.

`target_stats` measures the difference: mean max-posterior (confidence) and entropy per step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from signkd.experiment import train_config
from signkd.kd.loss import TEACHER_KEYS, attach_teacher_outputs
from signkd.models.checkpoint import build_model, freeze
from signkd.models.spec import ModelSpec
from signkd.params import Params
from signkd.seeding import set_seed
from signkd.training.data import Item, Vocabulary, targets_path, write_targets
from signkd.training.resume import resume_path
from signkd.training.trainer import train

TARGETS_DIR = "targets"  # one `<id>.safetensors` per training utterance


def fold_of(items: list[Item], folds: int, seed: int) -> np.ndarray:
    """A fixed random fold index per item."""
    order = np.random.default_rng(seed).permutation(len(items))
    fold = np.empty(len(items), np.int64)
    fold[order] = np.arange(len(items)) % folds
    return fold


def out_of_fold_targets(params: Params, vocab: Vocabulary, train_items: list[Item], dev_items: list[Item],
                        teacher_cfg: ModelSpec, folds: int, store: Path | None = None) -> list[float]:
    """Attach to every training item the outputs of a teacher trained without its fold;
    returns each fold teacher's best dev WER. Inputs are kept (the caller drops them)."""
    fold = fold_of(train_items, folds, params.seed)
    dev_wers = []
    for k in range(folds):
        rest = [it for it, f in zip(train_items, fold) if f != k]
        held = [it for it, f in zip(train_items, fold) if f == k]
        set_seed(params.seed + 1 + k)
        model = build_model(teacher_cfg)
        cfg = train_config(params, params.teacher)
        result = train(model, rest, dev_items, vocab, cfg, None, None, f"fold {k + 1}/{folds}",
                       resume_path("teacher_targets", f"fold{k + 1}of{folds}"))
        attach_teacher_outputs(freeze(model), held, keep=("video", "keypoints", "flow"), store=store)
        dev_wers.append(result.best_dev_wer)
    return dev_wers


def save_targets(items: list[Item], directory: Path) -> Path:
    """Every item's teacher outputs as `directory/targets/<id>.safetensors` (items whose outputs
    were written there already are left alone)."""
    store = directory / TARGETS_DIR
    for it in items:
        if it.targets != store:
            write_targets(store, it.id, {k: it.teacher_outputs()[k] for k in TEACHER_KEYS})
    return store


def load_targets(items: list[Item], directory: Path, keep: tuple[str, ...]) -> None:
    """Point items at their stored targets (read per batch, never all at once) and drop the
    inputs not in `keep`."""
    store = directory / TARGETS_DIR
    if not store.is_dir():
        raise FileNotFoundError(f"teacher targets {store} missing: run `dvc repro teacher_targets`")
    for it in items:
        if not targets_path(store, it.id).is_file():
            raise FileNotFoundError(f"{store} has no targets for {it.id}: rerun `dvc repro teacher_targets`")
        kept = it.restricted(keep)
        it.tensors, it.modalities, it.targets = kept.tensors, kept.modalities, store


def target_stats(items: list[Item]) -> dict[str, float]:
    """How soft the sequence-head targets are: mean max-posterior and entropy (nats) per step
    (accumulated item by item)."""
    confidence = entropy = 0.0
    steps = 0
    for it in items:
        probs = it.teacher_outputs()["t_seq_logits"].double().softmax(-1)
        confidence += float(probs.max(-1).values.sum())
        entropy += float(-(probs * probs.clamp_min(1e-12).log()).sum())
        steps += probs.shape[0]
    return {"target_confidence": round(confidence / steps, 4), "target_entropy": round(entropy / steps, 4)}
