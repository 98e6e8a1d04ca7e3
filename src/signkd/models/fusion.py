"""How the teacher combines its streams (video, keypoints, optical flow) at the temporal level.

Every stream first has its own K5-P2-K5-P2 temporal convolution with its own CTC head (as
two-stream CSLR models train each stream alongside the fused one). The variants differ in how
the per-stream features meet:

* `lateral` -- lateral connections between the streams' temporal convolutions: after the
  first conv block every stream adds a learned projection of the others' features (as in
  SlowFast / TwoStream-SLR), then the streams are summed.
* `attention` -- cross-modal attention at each time step: the streams' features are tokens
  that attend to each other (multi-head attention with a modality embedding), then averaged.
(`early` fuses per-frame features before one shared temporal conv and `late` averages the
streams' posteriors; both live in `recognizer.py` because they change where fusion happens.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from signkd.models.blocks import MaskedBatchNorm1d, valid_mask


class LateralTemporalConv(nn.Module):
    """Per-stream K5-P2-K5-P2 with lateral connections after the first block."""

    def __init__(self, streams: tuple[str, ...], in_dim: int, hidden: int):
        super().__init__()
        self.streams = streams
        self.conv1 = nn.ModuleDict({m: nn.Conv1d(in_dim, hidden, 5, padding=2) for m in streams})
        self.norm1 = nn.ModuleDict({m: MaskedBatchNorm1d(hidden) for m in streams})
        self.lateral = nn.ModuleDict({f"{a}_to_{b}": nn.Linear(hidden, hidden) for a in streams for b in streams if a != b})
        self.conv2 = nn.ModuleDict({m: nn.Conv1d(hidden, hidden, 5, padding=2) for m in streams})
        self.norm2 = nn.ModuleDict({m: MaskedBatchNorm1d(hidden) for m in streams})

    @staticmethod
    def _block(x, lengths, conv, norm):
        mask = valid_mask(x, lengths)
        y = conv((x * mask[:, :, None]).transpose(1, 2))
        y = F.max_pool1d(F.relu(norm(y, mask)), 2).transpose(1, 2)
        lengths = torch.div(lengths, 2, rounding_mode="floor")
        return y * valid_mask(y, lengths)[:, :, None], lengths

    def forward(self, feats: dict[str, torch.Tensor], lengths: torch.Tensor):
        """Per-stream [B, T, D] -> (per-stream [B, T // 4, H], lengths // 4)."""
        first: dict[str, torch.Tensor] = {}
        for m in self.streams:
            first[m], half = self._block(feats[m], lengths, self.conv1[m], self.norm1[m])
        mixed = {
            m: first[m] + sum(self.lateral[f"{o}_to_{m}"](first[o]) for o in self.streams if o != m) for m in self.streams
        }
        out: dict[str, torch.Tensor] = {}
        for m in self.streams:
            out[m], quarter = self._block(mixed[m], half, self.conv2[m], self.norm2[m])
        return out, quarter


class CrossModalAttention(nn.Module):
    """At each time step the streams' features attend to each other; the result is averaged."""

    def __init__(self, streams: tuple[str, ...], hidden: int, heads: int = 4, dropout: float = 0.1):
        super().__init__()
        self.streams = streams
        self.modality = nn.Parameter(torch.zeros(len(streams), hidden))
        self.attention = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, feats: dict[str, torch.Tensor], lengths: torch.Tensor) -> torch.Tensor:
        """Per-stream [B, T', H] -> fused [B, T', H], zero on padded steps."""
        tokens = torch.stack([feats[m] for m in self.streams], dim=2)  # [B, T', S, H]
        b, t, s, h = tokens.shape
        tokens = tokens.reshape(b * t, s, h) + self.modality[None]
        attended, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        fused = self.norm(tokens + attended).mean(1).view(b, t, h)
        return fused * valid_mask(fused, lengths)[:, :, None]
