"""Synthetic recognition errors for denoising pre-training (the KD-MSLRT recipe).

A CTC recogniser drops glosses, hallucinates extra ones, confuses similar signs and, less
often, gets the order of neighbours wrong. Corrupting clean gloss sentences with exactly these
four edits gives unlimited (noisy, clean) training pairs before any real recogniser output
exists, so the corrector can be trained offline without a pretrained checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_NOISE = {"p_delete": 0.12, "p_insert": 0.06, "p_substitute": 0.12, "p_swap": 0.05}


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")


def corrupt(
    glosses: Sequence[str],
    vocab: Sequence[str],
    rng: np.random.Generator,
    *,
    p_delete: float,
    p_insert: float,
    p_substitute: float,
    p_swap: float,
) -> list[str]:
    """Return a noisy copy of `glosses`; the same rng state always gives the same copy.

    Each gloss is deleted with `p_delete`, otherwise replaced by a different vocabulary gloss
    with `p_substitute`; after each position a random gloss is inserted with `p_insert`; then
    each adjacent pair is swapped with `p_swap` (left to right, a swapped gloss is not swapped
    again). The input is never modified.
    """
    for name, value in (("p_delete", p_delete), ("p_insert", p_insert), ("p_substitute", p_substitute), ("p_swap", p_swap)):
        _check_probability(name, value)
    if not vocab:
        raise ValueError("vocab is empty: substitutions and insertions need glosses to draw from")
    vocab = list(vocab)
    out: list[str] = []
    for gloss in glosses:
        deleted = rng.random() < p_delete
        if not deleted:
            out.append(_other_gloss(gloss, vocab, rng) if rng.random() < p_substitute else gloss)
        if rng.random() < p_insert:
            out.append(vocab[int(rng.integers(len(vocab)))])
    i = 0
    while i < len(out) - 1:
        if rng.random() < p_swap:
            out[i], out[i + 1] = out[i + 1], out[i]
            i += 2
        else:
            i += 1
    return out


def _other_gloss(gloss: str, vocab: list[str], rng: np.random.Generator) -> str:
    """A vocabulary gloss different from `gloss` (the gloss itself if it is the only one)."""
    if len(vocab) == 1:
        return vocab[0]
    while True:
        candidate = vocab[int(rng.integers(len(vocab)))]
        if candidate != gloss:
            return candidate


def make_denoising_pairs(
    sentences: Sequence[Sequence[str]],
    vocab: Sequence[str],
    n: int,
    rng: np.random.Generator,
    *,
    clean_fraction: float = 0.15,
    max_redraws: int = 8,
    **noise: float,
) -> list[tuple[list[str], list[str]]]:
    """`n` (source, target) pairs: noisy copies of random sentences, and some clean copies.

    Clean copies (`clean_fraction` of the pairs) teach the model that a correct input maps to
    itself, which the "never make it worse" gate relies on. A noisy copy that came out identical
    to its sentence is re-drawn (up to `max_redraws` times), so the share of identity pairs stays
    close to `clean_fraction` even for short sentences. `noise` overrides DEFAULT_NOISE.
    """
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    _check_probability("clean_fraction", clean_fraction)
    sentences = [list(s) for s in sentences if len(s) > 0]
    if not sentences:
        raise ValueError("no non-empty sentences to corrupt")
    unknown = set(noise) - set(DEFAULT_NOISE)
    if unknown:
        raise ValueError(f"unknown noise parameter(s): {sorted(unknown)}; expected {sorted(DEFAULT_NOISE)}")
    probs = {**DEFAULT_NOISE, **noise}
    pairs: list[tuple[list[str], list[str]]] = []
    for _ in range(n):
        target = sentences[int(rng.integers(len(sentences)))]
        if rng.random() < clean_fraction:
            pairs.append((list(target), list(target)))
            continue
        source = corrupt(target, vocab, rng, **probs)
        for _ in range(max_redraws):
            if source != target:
                break
            source = corrupt(target, vocab, rng, **probs)
        pairs.append((source, list(target)))
    return pairs
