"""Building blocks shared by teacher and student, as in VAC / CorrNet.

frame encoder -> temporal conv (K5-P2-K5-P2, x4 downsampling) -> BiLSTM, with a CTC head on the
temporal-conv features and one on the BiLSTM features (VAC's two heads).

Every block takes the valid length of each sequence and is *padding-independent*: an utterance
gives the same output alone as in a padded batch with longer ones. Training evaluates padded
batches while `quantize` and `recognize` run one unpadded utterance, so without this the
numbers measured during training would not be the numbers deployment sees. The masks are built
from tensor operations only (no Python ints taken from shapes), so the ONNX export keeps a
dynamic time axis.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from signkd.model_input import DOWNSAMPLE  # noqa: F401 - re-exported: two max-pools of 2 in TemporalConv


def downsampled_length(lengths: torch.Tensor) -> torch.Tensor:
    """Frame count after TemporalConv; 'same' padding keeps the conv, each pool halves."""
    return torch.div(torch.div(lengths, 2, rounding_mode="floor"), 2, rounding_mode="floor")


def valid_mask(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """[B, T] bool, True on the first `lengths[b]` steps of x ([B, T, ...])."""
    positions = torch.ones_like(x.flatten(2)[:, :, 0], dtype=torch.float32).cumsum(1) - 1
    return positions < lengths[:, None].to(positions.dtype)


def reverse_valid(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence's valid part in place of [B, T, D], leaving the padding where it is.

    This is its own inverse; it lets a backward LSTM start at each sequence's true last frame."""
    positions = torch.ones_like(x.flatten(2)[:, :, 0], dtype=torch.float32).cumsum(1) - 1
    last = lengths[:, None].to(positions.dtype) - 1
    index = torch.where(positions <= last, last - positions, positions).long()
    return x.gather(1, index[:, :, None].expand_as(x))


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm over [B, C, T] whose training statistics come from valid steps only."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if not self.training:
            return super().forward(x)
        # statistics in float32: under autocast (AMP on CUDA) x is float16, whose sums over B x T
        # overflow, and the float32 running statistics cannot be blended with it (a no-op otherwise)
        x = x.float()
        m = mask[:, None, :].to(x.dtype)
        count = m.sum().clamp(min=2.0)
        mean = (x * m).sum((0, 2)) / count
        var = (((x - mean[None, :, None]) ** 2) * m).sum((0, 2)) / count
        with torch.no_grad():
            momentum = self.momentum if self.momentum is not None else 0.1
            # the stubs type these buffers Tensor | None (None without track_running_stats, never used here)
            self.running_mean.lerp_(mean, momentum)  # type: ignore[union-attr]
            self.running_var.lerp_(var * count / (count - 1), momentum)  # type: ignore[union-attr]
            self.num_batches_tracked += 1  # type: ignore[operator, assignment]
        x_hat = (x - mean[None, :, None]) / torch.sqrt(var[None, :, None] + self.eps)
        return x_hat * self.weight[None, :, None] + self.bias[None, :, None]


class FrameCNN(nn.Module):
    """Per-frame 2-D CNN (video or optical flow) pooled to one vector per frame.

    Only valid frames go through the CNN, so padding never reaches BatchNorm's statistics."""

    def __init__(self, in_channels: int, out_dim: int, width: int = 32):
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        self.body = nn.Sequential(block(in_channels, width), block(width, width * 2), block(width * 2, width * 2))
        self.proj = nn.Linear(width * 2, out_dim)

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """[B, T, C, H, W] -> [B, T, out_dim], zero on padded frames."""
        mask = valid_mask(frames, lengths)
        feats = self.proj(self.body(frames[mask]).mean(dim=(2, 3)))
        out = feats.new_zeros((*mask.shape, feats.shape[-1]))
        out[mask] = feats
        return out


class KeypointEncoder(nn.Module):
    """Normalised landmarks + visibility mask of one frame -> a feature vector (a 1-D model)."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, out_dim), nn.LayerNorm(out_dim), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(out_dim, out_dim), nn.ReLU(inplace=True),
        )

    def forward(self, keypoints: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """[B, T, F] -> [B, T, out_dim], zero on padded frames."""
        return self.net(keypoints) * valid_mask(keypoints, lengths)[:, :, None]


class TemporalConv(nn.Module):
    """K5-P2-K5-P2: local temporal patterns, x4 shorter sequence.

    Padded steps are zeroed before each convolution, so a valid step near the end sees the same
    zeros the unpadded sequence gets from the convolution's own padding."""

    def __init__(self, in_dim: int, hidden: int):
        super().__init__()
        self.conv1 = nn.Conv1d(in_dim, hidden, 5, padding=2)
        self.norm1 = MaskedBatchNorm1d(hidden)
        self.conv2 = nn.Conv1d(hidden, hidden, 5, padding=2)
        self.norm2 = MaskedBatchNorm1d(hidden)

    @staticmethod
    def _block(x: torch.Tensor, lengths: torch.Tensor, conv: nn.Conv1d, norm: MaskedBatchNorm1d):
        mask = valid_mask(x, lengths)
        y = conv((x * mask[:, :, None]).transpose(1, 2))
        y = F.relu(norm(y, mask)).transpose(1, 2)
        y = F.max_pool1d(y.transpose(1, 2), 2).transpose(1, 2)
        lengths = torch.div(lengths, 2, rounding_mode="floor")
        return y * valid_mask(y, lengths)[:, :, None], lengths

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, T, D] -> ([B, T // 4, hidden], lengths // 4)."""
        x, lengths = self._block(x, lengths, self.conv1, self.norm1)
        return self._block(x, lengths, self.conv2, self.norm2)


class SequenceModel(nn.Module):
    """BiLSTM over the downsampled sequence: long-range context for gloss boundaries.

    Each direction is its own LSTM; the backward one reads each sequence's valid part reversed,
    so it starts at the true last frame instead of reading the padding first (what an unpacked
    bidirectional nn.LSTM does). Unlike `pack_padded_sequence`, this exports to ONNX as is."""

    def __init__(self, hidden: int, num_layers: int = 2):
        super().__init__()
        half = hidden // 2
        dims = [hidden] + [2 * half] * (num_layers - 1)
        self.forward_lstms = nn.ModuleList(nn.LSTM(d, half, batch_first=True) for d in dims)
        self.backward_lstms = nn.ModuleList(nn.LSTM(d, half, batch_first=True) for d in dims)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = valid_mask(x, lengths)[:, :, None]
        for fwd, bwd in zip(self.forward_lstms, self.backward_lstms):
            ahead = fwd(x)[0]
            behind = reverse_valid(bwd(reverse_valid(x, lengths))[0], lengths)
            x = torch.cat([ahead, behind], dim=-1) * mask
        return x
