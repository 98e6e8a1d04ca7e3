"""CTC recognisers: the multi-modal teacher and the single-modal student.

Every model returns a `RecognizerOutput` with its features at three levels (frame, temporal,
sequence) and both heads' logits, which is what hierarchical distillation compares.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from signkd.models.blocks import FrameCNN, KeypointEncoder, SequenceModel, TemporalConv, downsampled_length

MODALITIES = ("video", "keypoints", "flow")


@dataclass
class RecognizerOutput:
    frame_feats: torch.Tensor  # [B, T, D]
    conv_feats: torch.Tensor  # [B, T', H]
    seq_feats: torch.Tensor  # [B, T', H]
    conv_logits: torch.Tensor  # [B, T', C]
    seq_logits: torch.Tensor  # [B, T', C]
    lengths: torch.Tensor  # [B] valid T'


class Branch(nn.Module):
    """Temporal conv -> BiLSTM -> two CTC heads, over per-frame features."""

    def __init__(self, in_dim: int, hidden: int, num_classes: int, dropout: float):
        super().__init__()
        self.temporal = TemporalConv(in_dim, hidden)
        self.sequence = SequenceModel(hidden)
        self.dropout = nn.Dropout(dropout)
        self.conv_head = nn.Linear(hidden, num_classes)
        self.seq_head = nn.Linear(hidden, num_classes)

    def forward(self, frame_feats: torch.Tensor, lengths: torch.Tensor) -> RecognizerOutput:
        conv = self.temporal(frame_feats)
        seq = self.sequence(conv)
        return RecognizerOutput(
            frame_feats=frame_feats,
            conv_feats=conv,
            seq_feats=seq,
            conv_logits=self.conv_head(self.dropout(conv)),
            seq_logits=self.seq_head(self.dropout(seq)),
            lengths=downsampled_length(lengths),
        )


class KeypointStudent(nn.Module):
    """KD-MSLRT-style deployable student: MediaPipe landmarks only, 1-D convolutions + BiLSTM."""

    modalities = ("keypoints",)

    def __init__(self, keypoint_dim: int, hidden: int, num_classes: int, dropout: float = 0.1):
        super().__init__()
        self.encoder = KeypointEncoder(keypoint_dim, hidden, dropout)
        self.branch = Branch(hidden, hidden, num_classes, dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> RecognizerOutput:
        return self.branch(self.encoder(batch["keypoints"]), batch["lengths"])


class MultiModalTeacher(nn.Module):
    """SignKD teacher: video, keypoint and flow streams fused early (per frame) or late (logits)."""

    modalities = MODALITIES

    def __init__(
        self, keypoint_dim: int, hidden: int, num_classes: int, fusion: str = "early", dropout: float = 0.1,
        cnn_width: int = 32, modality_dropout: float = 0.0,
    ):
        super().__init__()
        self.modality_dropout = modality_dropout
        if fusion not in ("early", "late"):
            raise ValueError(f"unknown fusion {fusion!r}; use 'early' or 'late'")
        self.fusion = fusion
        self.streams = nn.ModuleDict({
            "video": FrameCNN(3, hidden, cnn_width),
            "keypoints": KeypointEncoder(keypoint_dim, hidden, dropout),
            "flow": FrameCNN(2, hidden, cnn_width),
        })
        if fusion == "early":
            self.fuse = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.ReLU(inplace=True))
            self.branch = Branch(hidden, hidden, num_classes, dropout)
        else:
            self.branches = nn.ModuleDict({m: Branch(hidden, hidden, num_classes, dropout) for m in MODALITIES})

    def _drop_modalities(self, feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Modality dropout (training only): zero whole streams per video at random, so the
        fused model cannot lean on one stream (the easiest to memorise) and learns from all."""
        if not self.training or self.modality_dropout == 0.0:
            return feats
        first = feats[MODALITIES[0]]
        keep = _keep_mask(first.shape[0], len(MODALITIES), self.modality_dropout, first.device)
        return {m: feats[m] * keep[:, i, None, None] / (1.0 - self.modality_dropout) for i, m in enumerate(MODALITIES)}

    def forward(self, batch: dict[str, torch.Tensor]) -> RecognizerOutput:
        feats = self._drop_modalities({m: self.streams[m](batch[m]) for m in MODALITIES})
        if self.fusion == "early":
            fused = self.fuse(torch.cat([feats[m] for m in MODALITIES], dim=-1))
            return self.branch(fused, batch["lengths"])
        outs = [self.branches[m](feats[m], batch["lengths"]) for m in MODALITIES]
        # Late fusion: average the streams' log-posteriors (a product of experts) and features.
        def mean(attr: str) -> torch.Tensor:
            return torch.stack([getattr(o, attr) for o in outs]).mean(0)

        def mean_log_softmax(attr: str) -> torch.Tensor:
            return torch.stack([getattr(o, attr).log_softmax(-1) for o in outs]).mean(0)

        return RecognizerOutput(
            frame_feats=mean("frame_feats"),
            conv_feats=mean("conv_feats"),
            seq_feats=mean("seq_feats"),
            conv_logits=mean_log_softmax("conv_logits"),
            seq_logits=mean_log_softmax("seq_logits"),
            lengths=outs[0].lengths,
        )


def _keep_mask(batch_size: int, num_streams: int, p: float, device: torch.device) -> torch.Tensor:
    """[B, S] 0/1: each stream dropped with probability p, never all streams of one sample."""
    keep = (torch.rand(batch_size, num_streams, device=device) >= p).float()
    none_left = keep.sum(1) == 0
    keep[none_left, torch.randint(num_streams, (int(none_left.sum()),), device=device)] = 1.0
    return keep


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
