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
import torch
from safetensors.torch import load_file, save_file

from signkd.experiment import checkpoint_path, train_config
from signkd.io import atomic_path
from signkd.models.checkpoint import build_model, freeze
from signkd.params import Params
from signkd.seeding import set_seed
from signkd.training.data import Item, Vocabulary
from signkd.training.kd import TEACHER_KEYS, attach_teacher_outputs
from signkd.training.trainer import train

TARGETS_FILE = "targets.safetensors"


def fold_of(items: list[Item], folds: int, seed: int) -> np.ndarray:
    """A fixed random fold index per item."""
    order = np.random.default_rng(seed).permutation(len(items))
    fold = np.empty(len(items), np.int64)
    fold[order] = np.arange(len(items)) % folds
    return fold


def out_of_fold_targets(params: Params, vocab: Vocabulary, train_items: list[Item], dev_items: list[Item],
                        teacher_cfg: dict, folds: int) -> list[float]:
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
                       checkpoint_path("teacher_targets", f"fold{k + 1}of{folds}"))
        attach_teacher_outputs(freeze(model), held, keep=("video", "keypoints", "flow"))
        dev_wers.append(result.best_dev_wer)
    return dev_wers


def save_targets(items: list[Item], directory: Path) -> Path:
    tensors = {f"{it.id}/{k}": it.tensors[k].contiguous() for it in items for k in TEACHER_KEYS}
    path = directory / TARGETS_FILE
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))
    return path


def load_targets(items: list[Item], directory: Path, keep: tuple[str, ...]) -> None:
    """Attach stored targets to items (by id) and drop the inputs not in `keep`."""
    path = directory / TARGETS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"teacher targets {path} missing: run `dvc repro teacher_targets`")
    stored = load_file(str(path))
    for it in items:
        missing = [k for k in TEACHER_KEYS if f"{it.id}/{k}" not in stored]
        if missing:
            raise FileNotFoundError(f"{path} has no targets for {it.id}: rerun `dvc repro teacher_targets`")
        it.tensors.update({k: stored[f"{it.id}/{k}"] for k in TEACHER_KEYS})
        kept = it.restricted(keep)
        it.tensors, it.modalities = kept.tensors, kept.modalities


def target_stats(items: list[Item]) -> dict[str, float]:
    """How soft the sequence-head targets are: mean max-posterior and entropy (nats) per step."""
    probs = torch.cat([it.tensors["t_seq_logits"].softmax(-1) for it in items])
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1)
    return {"target_confidence": round(float(probs.max(-1).values.mean()), 4), "target_entropy": round(float(entropy.mean()), 4)}
