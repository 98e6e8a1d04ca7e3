"""CTC recognisers: the multi-modal teacher and the single-modal students.

Every model returns a `RecognizerOutput` with its features at three levels (frame, temporal,
sequence) and both heads' logits, which is what hierarchical distillation compares; a
multi-stream teacher also returns each stream's own CTC logits (`stream_logits`), trained
alongside the fused heads so that every stream learns to recognise on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from signkd.models.blocks import FrameCNN, KeypointEncoder, SequenceModel, TemporalConv
from signkd.models.fusion import CrossModalAttention, LateralTemporalConv
from signkd.models.resnet import ResNetFrameEncoder

MODALITIES = ("video", "keypoints", "flow")
FUSIONS = ("early", "late", "attention", "lateral")
VIDEO_BACKBONES = ("small_cnn", "resnet18")  # `model.video_backbone`: the RGB frame encoder


@dataclass
class RecognizerOutput:
    frame_feats: torch.Tensor  # [B, T, D]
    conv_feats: torch.Tensor  # [B, T', H]
    seq_feats: torch.Tensor  # [B, T', H]
    conv_logits: torch.Tensor  # [B, T', C]
    seq_logits: torch.Tensor  # [B, T', C]
    lengths: torch.Tensor  # [B] valid T'
    stream_logits: dict[str, torch.Tensor] = field(default_factory=dict)  # per-stream CTC heads [B, T', C]


def frame_encoder(modality: str, keypoint_dim: int, hidden: int, cnn_width: int, dropout: float,
                  video_backbone: str = "small_cnn", backbone_weights: str = "") -> nn.Module:
    """Per-frame features of one modality: a 2-D CNN over RGB or flow, an MLP over landmarks.

    RGB frames go through the small `FrameCNN` (sized for the synthetic corpus) or, with
    `video_backbone="resnet18"`, an ImageNet-style ResNet-18 (real datasets at 224x224),
    initialised from `backbone_weights` (a local torchvision state dict) when given."""
    if video_backbone not in VIDEO_BACKBONES:
        raise ValueError(f"unknown video backbone {video_backbone!r}; use one of {VIDEO_BACKBONES}")
    if modality == "keypoints":
        return KeypointEncoder(keypoint_dim, hidden, dropout)
    if modality == "video" and video_backbone == "resnet18":
        return ResNetFrameEncoder(hidden, backbone_weights)
    if modality in ("video", "flow"):
        return FrameCNN(3 if modality == "video" else 2, hidden, cnn_width)
    raise ValueError(f"unknown modality {modality!r}; use one of {MODALITIES}")


class Heads(nn.Module):
    """VAC's two CTC heads: one on the temporal-conv features, one on the BiLSTM features."""

    def __init__(self, hidden: int, num_classes: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.conv_head = nn.Linear(hidden, num_classes)
        self.seq_head = nn.Linear(hidden, num_classes)

    def forward(self, frame, conv, seq, lengths, streams=None) -> RecognizerOutput:
        return RecognizerOutput(
            frame_feats=frame, conv_feats=conv, seq_feats=seq, conv_logits=self.conv_head(self.dropout(conv)),
            seq_logits=self.seq_head(self.dropout(seq)), lengths=lengths, stream_logits=streams or {},
        )


class Branch(nn.Module):
    """Temporal conv -> BiLSTM -> two CTC heads, over per-frame features."""

    def __init__(self, in_dim: int, hidden: int, num_classes: int, dropout: float):
        super().__init__()
        self.temporal = TemporalConv(in_dim, hidden)
        self.sequence = SequenceModel(hidden)
        self.heads = Heads(hidden, num_classes, dropout)

    def forward(self, frame_feats: torch.Tensor, lengths: torch.Tensor) -> RecognizerOutput:
        conv, conv_lengths = self.temporal(frame_feats, lengths)
        return self.heads(frame_feats, conv, self.sequence(conv, conv_lengths), conv_lengths)


class Student(nn.Module):
    """A deployable single-modal student: per-frame encoder -> Branch."""

    def __init__(self, modality: str, keypoint_dim: int, hidden: int, num_classes: int, dropout: float = 0.1,
                 cnn_width: int = 16, video_backbone: str = "small_cnn", backbone_weights: str = ""):
        super().__init__()
        self.modalities = (modality,)
        self.encoder = frame_encoder(modality, keypoint_dim, hidden, cnn_width, dropout, video_backbone, backbone_weights)
        self.branch = Branch(hidden, hidden, num_classes, dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> RecognizerOutput:
        lengths = batch["lengths"]
        return self.branch(self.encoder(batch[self.modalities[0]], lengths), lengths)


class KeypointStudent(Student):
    """KD-MSLRT-style student: MediaPipe landmarks only, 1-D convolutions + BiLSTM."""

    def __init__(self, keypoint_dim: int, hidden: int, num_classes: int, dropout: float = 0.1):
        super().__init__("keypoints", keypoint_dim, hidden, num_classes, dropout)


class VideoStudent(Student):
    """SignKD-style student: RGB frames only, so inference needs neither MediaPipe nor flow."""

    def __init__(self, hidden: int, num_classes: int, dropout: float = 0.1, cnn_width: int = 16,
                 video_backbone: str = "small_cnn", backbone_weights: str = ""):
        super().__init__("video", 0, hidden, num_classes, dropout, cnn_width, video_backbone, backbone_weights)


class MultiModalTeacher(nn.Module):
    """SignKD teacher over any subset of video, keypoints and flow (one stream: a single-stream
    model of teacher size), fused `early`, `late`, by cross-modal `attention` or `lateral`
    connections (see `signkd.models.fusion`)."""

    def __init__(
        self, keypoint_dim: int, hidden: int, num_classes: int, fusion: str = "early", dropout: float = 0.1,
        cnn_width: int = 32, modality_dropout: float = 0.0, modalities: tuple[str, ...] = MODALITIES,
        video_backbone: str = "small_cnn", backbone_weights: str = "",
    ):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; use one of {FUSIONS}")
        self.modalities = tuple(modalities)
        self.fusion = fusion if len(self.modalities) > 1 else "early"
        self.modality_dropout = modality_dropout
        self.streams = nn.ModuleDict({
            m: frame_encoder(m, keypoint_dim, hidden, cnn_width, dropout, video_backbone, backbone_weights)
            for m in self.modalities
        })
        multi = len(self.modalities) > 1
        if self.fusion == "late":
            self.branches = nn.ModuleDict({m: Branch(hidden, hidden, num_classes, dropout) for m in self.modalities})
            return
        if self.fusion == "lateral":
            self.lateral = LateralTemporalConv(self.modalities, hidden, hidden)
        elif multi:
            self.stream_temporal = nn.ModuleDict({m: TemporalConv(hidden, hidden) for m in self.modalities})
        if multi:
            self.stream_heads = nn.ModuleDict({m: nn.Linear(hidden, num_classes) for m in self.modalities})
        if self.fusion == "early":
            self.fuse = nn.Sequential(nn.Linear(len(self.modalities) * hidden, hidden), nn.ReLU()) if multi else nn.Identity()
            self.branch = Branch(hidden, hidden, num_classes, dropout)
            return
        if self.fusion == "attention":
            self.attend = CrossModalAttention(self.modalities, hidden, dropout=dropout)
        self.sequence = SequenceModel(hidden)
        self.heads = Heads(hidden, num_classes, dropout)

    def _drop_modalities(self, feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Modality dropout (training only): zero whole streams per video at random, so the
        fused model cannot lean on one stream (the easiest to memorise) and learns from all."""
        if not self.training or self.modality_dropout == 0.0 or len(self.modalities) == 1:
            return feats
        first = feats[self.modalities[0]]
        keep = _keep_mask(first.shape[0], len(self.modalities), self.modality_dropout, first.device)
        return {m: feats[m] * keep[:, i, None, None] / (1.0 - self.modality_dropout) for i, m in enumerate(self.modalities)}

    def forward(self, batch: dict[str, torch.Tensor]) -> RecognizerOutput:
        lengths = batch["lengths"]
        feats = self._drop_modalities({m: self.streams[m](batch[m], lengths) for m in self.modalities})
        frame = torch.stack([feats[m] for m in self.modalities]).mean(0)
        if self.fusion == "late":
            return self._late(feats, lengths, frame)
        if self.fusion == "lateral":
            convs, conv_lengths = self.lateral(feats, lengths)
        elif len(self.modalities) > 1:
            pairs = {m: self.stream_temporal[m](feats[m], lengths) for m in self.modalities}
            convs, conv_lengths = {m: p[0] for m, p in pairs.items()}, next(iter(pairs.values()))[1]
        streams = {m: self.stream_heads[m](convs[m]) for m in self.modalities} if len(self.modalities) > 1 else {}
        if self.fusion == "early":
            out = self.branch(self.fuse(torch.cat([feats[m] for m in self.modalities], dim=-1)), lengths)
            out.frame_feats, out.stream_logits = frame, streams
            return out
        if self.fusion == "attention":
            conv = self.attend(convs, conv_lengths)
        else:
            conv = torch.stack([convs[m] for m in self.modalities]).sum(0)
        return self.heads(frame, conv, self.sequence(conv, conv_lengths), conv_lengths, streams)

    def _late(self, feats, lengths, frame) -> RecognizerOutput:
        """Late fusion: average the streams' log-posteriors (a product of experts) and features."""
        outs = {m: self.branches[m](feats[m], lengths) for m in self.modalities}

        def mean(attr: str) -> torch.Tensor:
            return torch.stack([getattr(o, attr) for o in outs.values()]).mean(0)

        def mean_log_softmax(attr: str) -> torch.Tensor:
            return torch.stack([getattr(o, attr).log_softmax(-1) for o in outs.values()]).mean(0)

        return RecognizerOutput(
            frame_feats=frame, conv_feats=mean("conv_feats"), seq_feats=mean("seq_feats"),
            conv_logits=mean_log_softmax("conv_logits"), seq_logits=mean_log_softmax("seq_logits"),
            lengths=next(iter(outs.values())).lengths, stream_logits={m: o.seq_logits for m, o in outs.items()},
        )


def _keep_mask(batch_size: int, num_streams: int, p: float, device: torch.device) -> torch.Tensor:
    """[B, S] 0/1: each stream dropped with probability p, never all streams of one sample."""
    keep = (torch.rand(batch_size, num_streams, device=device) >= p).float()
    none_left = keep.sum(1) == 0
    keep[none_left, torch.randint(num_streams, (int(none_left.sum()),), device=device)] = 1.0
    return keep


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
