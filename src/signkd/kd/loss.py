"""Hierarchical knowledge distillation (SignKD's HKD, KD-MSLRT's 3D -> 1D transfer).

The frozen multi-modal teacher's outputs are precomputed once (or, with `kd.teacher_targets:
online`, computed on every training batch from the same augmented view the student sees); the
student then learns from
  (1 - alpha) * CTC(ground truth)
  + alpha * T^2 * [KL(teacher || student) on the sequence head + on the conv head]
  + sum over levels (frame, temporal, sequence) of w_level * MSE(adapter(student feature), teacher feature),
    both features standardised per step (see `feature_mse`)
The adapters are small learned projections from the student's width to the teacher's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from signkd.models.recognizer import RecognizerOutput
from signkd.training.data import Item, collate, write_targets
from signkd.training.trainer import ctc_loss, to_device

LEVELS = ("frame", "temporal", "sequence")
_OUTPUT_FIELD = {"frame": "frame_feats", "temporal": "conv_feats", "sequence": "seq_feats"}
TEACHER_KEYS = ("t_frame", "t_temporal", "t_sequence", "t_conv_logits", "t_seq_logits")


@dataclass(frozen=True)
class KDConfig:
    alpha: float
    temperature: float
    level_weights: dict[str, float]


@torch.no_grad()
def attach_teacher_outputs(
    teacher: nn.Module, items: list[Item], batch_size: int = 8, keep: tuple[str, ...] = ("keypoints",),
    store: Path | None = None,
) -> None:
    """Run the frozen teacher once and give each item its features/logits (then drop the input
    modalities not in `keep`: those the student never sees): in memory, or with `store` written
    there, one file per utterance, and read back per batch (what a real corpus needs)."""
    teacher.eval()
    device = next(teacher.parameters()).device
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        out: RecognizerOutput = teacher(to_device(collate(chunk), device))
        for i, it in enumerate(chunk):
            n, m = it.num_frames, int(out.lengths[i])
            outputs = {k: v[i, :n if k == "t_frame" else m].to("cpu", copy=True) for k, v in teacher_targets(out).items()}
            if store is None:
                it.tensors.update(outputs)
            else:
                write_targets(store, it.id, outputs)
                it.tensors = {k: v for k, v in it.tensors.items() if not k.startswith("t_")}
                it.targets = store
    for it in items:
        kept = it.restricted(keep)
        it.tensors, it.modalities = kept.tensors, kept.modalities


def teacher_targets(out: RecognizerOutput) -> dict[str, torch.Tensor]:
    """A teacher's outputs under the batch keys HKDLoss reads (padded like the batch)."""
    return {"t_frame": out.frame_feats, "t_temporal": out.conv_feats, "t_sequence": out.seq_feats,
            "t_conv_logits": out.conv_logits, "t_seq_logits": out.seq_logits}


def _mask(lengths: torch.Tensor, t: int) -> torch.Tensor:
    return (torch.arange(t, device=lengths.device)[None, :] < lengths[:, None]).float()


def distill_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, lengths: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-frame KL(teacher || student) at temperature T, times T^2 (Hinton et al.), over valid frames."""
    t = student_logits.shape[1]
    log_p_s = F.log_softmax(student_logits / temperature, dim=-1)
    log_p_t = F.log_softmax(teacher_logits[:, :t] / temperature, dim=-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1)
    mask = _mask(lengths, t)
    return (kl * mask).sum() / mask.sum().clamp(min=1) * temperature**2


def feature_mse(student: torch.Tensor, teacher: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """MSE between per-step standardised features (zero mean, unit variance over the feature
    axis), so each level's loss is O(1) whatever the scale of its activations and no level
    swamps the others; the level weights alone set their balance."""
    t = student.shape[1]
    s, te = F.layer_norm(student, student.shape[-1:]), F.layer_norm(teacher[:, :t], teacher.shape[-1:])
    err = (s - te).pow(2).mean(-1)
    mask = _mask(lengths, t)
    return (err * mask).sum() / mask.sum().clamp(min=1)


class HKDLoss(nn.Module):
    """The distillation objective, holding the learned adapters of the feature-level losses.

    With an online `teacher` (frozen, see signkd.models.checkpoint.freeze) its targets are computed
    on each batch, under the same augmentation as the student's inputs ("consistent teaching",
    Beyer et al. 2022): the student then also gets speed augmentation, which precomputed
    frame-aligned targets rule out, and every epoch a fresh view of the teacher's function. The
    teacher is held outside this module's parameters, so the optimiser never sees it."""

    def __init__(self, student_dim: int, teacher_dim: int, cfg: KDConfig, teacher: nn.Module | None = None):
        super().__init__()
        unknown = set(cfg.level_weights) - set(LEVELS)
        if unknown:
            raise ValueError(f"unknown distillation levels {sorted(unknown)}; use {LEVELS}")
        self.cfg = cfg
        self.adapters = nn.ModuleDict({lvl: nn.Linear(student_dim, teacher_dim) for lvl in LEVELS})
        self._online = (teacher,) if teacher is not None else ()  # a tuple: not a registered submodule

    def extra_repr(self) -> str:
        return f"cfg={self.cfg}, online_teacher={bool(self._online)}"

    @torch.no_grad()
    def _teacher_batch(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if not self._online or "t_seq_logits" in batch:
            return batch
        teacher = self._online[0]
        device = batch["lengths"].device
        if next(teacher.parameters()).device != device:
            teacher.to(device)
        teacher.eval()
        return {**batch, **teacher_targets(teacher(batch))}

    def forward(self, out: RecognizerOutput, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        batch = self._teacher_batch(batch)
        ctc, parts = ctc_loss(out, batch)
        temp = self.cfg.temperature
        kl = distill_kl(out.seq_logits, batch["t_seq_logits"], out.lengths, temp) + distill_kl(
            out.conv_logits, batch["t_conv_logits"], out.lengths, temp
        )
        feat = torch.zeros((), device=ctc.device)
        for lvl in LEVELS:
            w = self.cfg.level_weights.get(lvl, 0.0)
            if w == 0.0:
                continue
            lengths = batch["lengths"] if lvl == "frame" else out.lengths
            student_feat = self.adapters[lvl](getattr(out, _OUTPUT_FIELD[lvl]))
            mse = feature_mse(student_feat, batch[f"t_{lvl}"], lengths)
            parts[f"feat_{lvl}"] = mse.item()
            feat = feat + w * mse
        alpha = self.cfg.alpha
        loss = (1 - alpha) * ctc + alpha * kl + feat
        parts.update({"ctc": ctc.item(), "kl": kl.item()})
        return loss, parts

