"""CTC decoding: greedy and prefix beam search over per-frame log-probabilities.

Written here because the usual library (`ctcdecode`) is a C++ extension that does not build
offline, and torchaudio (whose decoder needs flashlight-text) has no CPU wheel for our torch.
Blank is class 0.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

BLANK = 0
_NEG_INF = -math.inf


def greedy_decode(log_probs: np.ndarray) -> list[int]:
    """Best class per frame, repeats collapsed, blanks removed. log_probs: [T, C]."""
    best = np.asarray(log_probs).argmax(axis=-1)
    out: list[int] = []
    prev = BLANK
    for c in best.tolist():
        if c != prev and c != BLANK:
            out.append(c)
        prev = c
    return out


def _logsumexp(a: float, b: float) -> float:
    if a == _NEG_INF:
        return b
    if b == _NEG_INF:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def beam_decode(log_probs: np.ndarray, beam_width: int = 5, prune: float = -12.0) -> list[int]:
    """CTC prefix beam search (Hannun et al. 2014) without a language model.

    Each prefix keeps two scores: ending in blank and ending in its last label, so that
    "A blank A" and "A A" are told apart. Classes whose frame log-prob is below `prune`
    are skipped, which keeps it fast for small vocabularies.
    """
    if beam_width < 1:
        raise ValueError(f"beam_width must be >= 1, got {beam_width}")
    log_probs = np.asarray(log_probs, dtype=np.float64)
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, _NEG_INF)}
    for frame in log_probs:
        candidates = [c for c in np.flatnonzero(frame > prune).tolist()] or [int(frame.argmax())]
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [_NEG_INF, _NEG_INF])
        for prefix, (p_b, p_nb) in beams.items():
            p_total = _logsumexp(p_b, p_nb)
            for c in candidates:
                p = float(frame[c])
                if c == BLANK:
                    entry = nxt[prefix]
                    entry[0] = _logsumexp(entry[0], p_total + p)
                    continue
                last = prefix[-1] if prefix else None
                extended = prefix + (c,)
                entry = nxt[extended]
                if c == last:
                    # a repeated label only extends the prefix after a blank
                    entry[1] = _logsumexp(entry[1], p_b + p)
                    same = nxt[prefix]
                    same[1] = _logsumexp(same[1], p_nb + p)
                else:
                    entry[1] = _logsumexp(entry[1], p_total + p)
        ranked = sorted(nxt.items(), key=lambda kv: _logsumexp(*kv[1]), reverse=True)[:beam_width]
        beams = {k: (v[0], v[1]) for k, v in ranked}
    best = max(beams.items(), key=lambda kv: _logsumexp(*kv[1]))
    return list(best[0])


def decode(log_probs: np.ndarray, method: str = "beam", beam_width: int = 5) -> list[int]:
    if method == "greedy":
        return greedy_decode(log_probs)
    if method == "beam":
        return beam_decode(log_probs, beam_width)
    raise ValueError(f"unknown decoder {method!r}; use 'greedy' or 'beam'")
