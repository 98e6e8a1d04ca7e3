"""Distillation recipes (`kd.recipe`), shared by the `tune` and `distill` stages and the studies.

* `logits` -- KD-MSLRT's recipe: CTC + temperature-scaled KL on both CTC heads; no feature losses.
* `hkd` -- SignKD's hierarchical KD: the KL terms plus feature losses at frame, temporal and
  sequence level through learned adapters (`kd.level_weights`).
* `chain` -- teacher -> assistant -> student: a smaller multi-stream assistant
  (`kd.assistant_modalities`, e.g. video + keypoints) is first distilled from the teacher with
  HKD, then the student is distilled from the assistant, which is closer to it in what it sees.

The teacher's outputs are precomputed once per training video by the `teacher_targets` stage
(see signkd.kd.targets), or with `kd.teacher_targets: online` computed by the frozen teacher
on every augmented training batch (see signkd.kd.loss.HKDLoss).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from torch import nn

from signkd.experiment import (
    keypoint_dim,
    load_splits,
    log_epoch,
    new_model,
    student_config,
    teacher_config,
    train_config,
)
from signkd.kd.loss import HKDLoss, attach_teacher_outputs
from signkd.kd.settings import KDSettings
from signkd.kd.targets import load_targets
from signkd.models.checkpoint import freeze
from signkd.models.spec import ModelSpec
from signkd.params import Params
from signkd.training.data import Item, Vocabulary
from signkd.training.resume import resume_dir, resume_path
from signkd.training.trainer import TrainResult, train

RECIPES = ("logits", "hkd", "chain")


@dataclass(frozen=True)
class Distilled:
    student: nn.Module
    result: TrainResult
    config: ModelSpec
    assistant_dev_wer: float | None = None


def online(params: Params) -> bool:
    """Whether the teacher runs on each training batch instead of from stored targets."""
    return params.kd.teacher_targets == "online"


def load_distillation_data(params: Params, vocab: Vocabulary, targets_dir: Path) -> dict[str, list[Item]]:
    """Train items carry the teacher's targets (from the `teacher_targets` stage) -- or, online,
    the teacher's own inputs -- and the inputs the student (and, for a chain, the assistant)
    reads; dev/test carry what they are evaluated on."""
    keep = distillation_inputs(params)
    items = load_splits(params, vocab, keep, student=True)
    if not online(params):
        load_targets(items["train"], targets_dir, keep)
    return items


def distillation_inputs(params: Params) -> tuple[str, ...]:
    """The modalities distillation's training items need: the student's, a chain's assistant's,
    and, with an online teacher, the teacher's."""
    chain = tuple(params.kd.assistant_modalities) if params.kd.recipe == "chain" else ()
    teacher = tuple(params.teacher.modalities) if online(params) else ()
    return tuple(dict.fromkeys((params.student.modality,) + chain + teacher))


def train_assistant(params: Params, items: dict[str, list[Item]], vocab: Vocabulary, teacher_cfg: ModelSpec,
                    kd: KDSettings, epochs: int | None, desc: str,
                    teacher: nn.Module | None = None, resume_stage: str | None = None) -> tuple[nn.Module, ModelSpec, TrainResult]:
    """The chain's middle model: a multi-stream model over fewer streams, distilled with HKD under
    the run's own settings `kd` (from stored targets, or from the online `teacher`). It does not
    depend on the student, so a study trains it once per seed for both students."""
    config = teacher_config(params, keypoint_dim(params), vocab).with_architecture(modalities=tuple(params.kd.assistant_modalities))
    assistant = new_model(config, params.seed)
    loss = HKDLoss(config.architecture.hidden, teacher_cfg.architecture.hidden, kd.for_recipe("hkd").loss_config(), teacher)
    result = train(assistant, items["train"], items["dev"], vocab, train_config(params, params.kd, epochs), loss, None,
                   f"{desc} (assistant)", resume_path(resume_stage, "assistant") if resume_stage else None)
    return assistant, config, result


def distill_student(
    params: Params, items: dict[str, list[Item]], vocab: Vocabulary, teacher_cfg: ModelSpec, kd: KDSettings,
    epochs: int | None = None, on_epoch=log_epoch, desc: str = "distill",
    assistant: tuple[nn.Module, ModelSpec, TrainResult] | None = None,
    teacher: nn.Module | None = None, resume_stage: str | None = None,
) -> Distilled:
    """Train a fresh student by `kd.recipe` under the settings `kd` (signkd.kd.settings: resolved
    once by the caller); returns it with its training record. `teacher` (frozen) is required with
    online targets. A chain trains its assistant first, under the same settings, unless one is
    given (`train_assistant`'s result). With `resume_stage`, every training loop keeps a resumable
    checkpoint under that stage (see signkd.training.resume)."""
    recipe = kd.recipe
    if recipe != params.kd.recipe:  # the inputs loaded (distillation_inputs) follow params' recipe
        raise ValueError(f"KD settings are for recipe {recipe!r} but params.kd.recipe is {params.kd.recipe!r}")
    if online(params) and teacher is None:
        raise ValueError("kd.teacher_targets is online: distill_student needs the frozen teacher")
    teacher = teacher if online(params) else None
    source_hidden, assistant_wer = teacher_cfg.architecture.hidden, None
    if recipe == "chain":
        a_model, a_cfg, a_result = assistant or train_assistant(params, items, vocab, teacher_cfg, kd, epochs,
                                                                desc, teacher, resume_stage)
        source_hidden, assistant_wer = a_cfg.architecture.hidden, a_result.best_dev_wer
        if teacher is not None:
            teacher = freeze(a_model)  # the student learns from the assistant, online
        else:
            # the student learns from the assistant's outputs; copies keep the teacher's for the next call
            items = {**items, "train": [replace(it, tensors=dict(it.tensors)) for it in items["train"]]}
            store = resume_dir(resume_stage) / "assistant_targets" if resume_stage else None
            attach_teacher_outputs(freeze(a_model), items["train"], keep=(params.student.modality,), store=store)
    config = student_config(params, keypoint_dim(params), vocab)
    student = new_model(config, params.seed)
    loss = HKDLoss(config.architecture.hidden, source_hidden, kd.loss_config(), teacher)
    result = train(student, items["train"], items["dev"], vocab, train_config(params, params.kd, epochs), loss, on_epoch, desc,
                   resume_path(resume_stage, "student") if resume_stage else None)
    return Distilled(student, result, config, assistant_wer)
