"""Building blocks shared by teacher and student, as in VAC / CorrNet.

frame encoder -> temporal conv (K5-P2-K5-P2, x4 downsampling) -> BiLSTM, with a CTC head on the
temporal-conv features and one on the BiLSTM features (VAC's two heads).
"""

from __future__ import annotations

import torch
from torch import nn

DOWNSAMPLE = 4  # two max-pools of 2 in TemporalConv


def downsampled_length(lengths: torch.Tensor) -> torch.Tensor:
    """Frame count after TemporalConv; 'same' padding keeps the conv, each pool halves."""
    return torch.div(torch.div(lengths, 2, rounding_mode="floor"), 2, rounding_mode="floor")


class FrameCNN(nn.Module):
    """Per-frame 2-D CNN (video or optical flow) pooled to one vector per frame."""

    def __init__(self, in_channels: int, out_dim: int, width: int = 32):
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        self.body = nn.Sequential(block(in_channels, width), block(width, width * 2), block(width * 2, width * 2))
        self.proj = nn.Linear(width * 2, out_dim)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """[B, T, C, H, W] -> [B, T, out_dim]."""
        b, t = frames.shape[:2]
        x = self.body(frames.flatten(0, 1))
        x = x.mean(dim=(2, 3))
        return self.proj(x).view(b, t, -1)


class KeypointEncoder(nn.Module):
    """Normalised landmarks + visibility mask of one frame -> a feature vector (a 1-D model)."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, out_dim), nn.LayerNorm(out_dim), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(out_dim, out_dim), nn.ReLU(inplace=True),
        )

    def forward(self, keypoints: torch.Tensor) -> torch.Tensor:
        """[B, T, F] -> [B, T, out_dim]."""
        return self.net(keypoints)


class TemporalConv(nn.Module):
    """K5-P2-K5-P2: local temporal patterns, x4 shorter sequence."""

    def __init__(self, in_dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(in_dim, hidden, 5, padding=2), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.MaxPool1d(2),
            nn.Conv1d(hidden, hidden, 5, padding=2), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.MaxPool1d(2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, D] -> [B, T // 4, hidden]."""
        return self.net(x.transpose(1, 2)).transpose(1, 2)


class SequenceModel(nn.Module):
    """BiLSTM over the downsampled sequence: long-range context for gloss boundaries."""

    def __init__(self, hidden: int):
        super().__init__()
        self.lstm = nn.LSTM(hidden, hidden // 2, num_layers=2, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Padding frames sit at the end; the CTC loss and decoders ignore outputs past each length,
        # and keeping the plain LSTM call (no packing) keeps the ONNX export simple.
        return self.lstm(x)[0]
