"""Training the corrector: denoising pre-training, then fine-tuning on real recogniser errors.

Pre-training needs only clean gloss sentences (synthetic noise supplies the errors), so the
corrector is useful before any recogniser exists and without a downloadable checkpoint.
Fine-tuning then adapts it to the error pattern of the actual student model; denoising pairs
are mixed back in so that the few real pairs do not make it forget the general recipe.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch
from tqdm.auto import tqdm

from signkd.correction.data import LeakGuard
from signkd.correction.model import GlossCorrector
from signkd.correction.noise import make_denoising_pairs

Pair = tuple[Sequence[str], Sequence[str]]


def pretrain(
    corrector: GlossCorrector,
    sentences: Sequence[Sequence[str]],
    vocab: Sequence[str],
    *,
    steps: int,
    lr: float,
    batch_size: int,
    seed: int,
    noise_samples: int,
    clean_fraction: float = 0.15,
    progress: bool = True,
    guard: LeakGuard | None = None,
    **noise: float,
) -> dict:
    """Train on `noise_samples` (noisy, clean) pairs drawn from `sentences`; returns the loss curve.

    `noise` overrides the corruption probabilities of `noise.DEFAULT_NOISE`. With `guard`, pairs
    whose noisy source or clean target is a guarded (dev/test) sentence are dropped.
    """
    _check_training_args(steps=steps, lr=lr, batch_size=batch_size)
    if noise_samples <= 0:
        raise ValueError(f"noise_samples must be positive, got {noise_samples}")
    if not vocab:
        raise ValueError("vocab is empty: noise needs glosses to insert and substitute")
    if not any(len(s) for s in sentences):
        raise ValueError("no non-empty sentences to pre-train on")
    rng = np.random.default_rng(seed)
    # noise: probabilities by name (checked there); mypy would match it against max_redraws: int too
    pairs = make_denoising_pairs(sentences, vocab, noise_samples, rng, clean_fraction=clean_fraction,
                                 **cast("dict[str, Any]", noise))
    kept = guard.pairs(pairs) if guard is not None else pairs
    result = _train(corrector, kept, steps=steps, lr=lr, batch_size=batch_size, seed=seed,
                    progress=progress, desc="correct: pretrain", guard=guard)
    result["num_dropped_pairs"] = len(pairs) - len(kept)
    return result


def finetune(
    corrector: GlossCorrector,
    pairs: Sequence[Pair],
    *,
    steps: int,
    lr: float,
    batch_size: int,
    seed: int,
    replay_fraction: float = 0.3,
    replay_sentences: Sequence[Sequence[str]] | None = None,
    vocab: Sequence[str] | None = None,
    progress: bool = True,
    guard: LeakGuard | None = None,
) -> dict:
    """Train on (recognised hypothesis, reference) pairs plus replayed denoising pairs.

    `replay_fraction` is the share of denoising pairs in the mixed training set (0 disables
    replay); they are drawn from `replay_sentences` (default: the references) with substitutes
    from `vocab` (default: every gloss seen in the pairs). With `guard`, every pair (real or
    replayed) that touches a guarded (dev/test) sentence is dropped.
    """
    _check_training_args(steps=steps, lr=lr, batch_size=batch_size)
    if not 0.0 <= replay_fraction < 1.0:
        raise ValueError(f"replay_fraction must be in [0, 1), got {replay_fraction}")
    pairs = [(list(h), list(r)) for h, r in pairs]
    if not pairs:
        raise ValueError("finetune needs at least one (hypothesis, reference) pair")
    sentences = [list(s) for s in (replay_sentences if replay_sentences is not None else [r for _, r in pairs])]
    seen = sorted({g for h, r in pairs for g in (*h, *r)})
    vocab = list(vocab) if vocab else seen
    n_replay = math.ceil(len(pairs) * replay_fraction / (1.0 - replay_fraction))
    replay: list = []
    if n_replay and vocab and any(sentences):
        replay = make_denoising_pairs(sentences, vocab, n_replay, np.random.default_rng(seed))
    mixed = pairs + replay
    if guard is not None:
        mixed = guard.pairs(mixed)
        if not mixed:
            raise ValueError("finetune: every pair contains a dev/test sentence; nothing left to train on")
    result = _train(corrector, mixed, steps=steps, lr=lr, batch_size=batch_size, seed=seed,
                    progress=progress, desc="correct: finetune", guard=guard)
    result["num_replay_pairs"] = len(replay)
    result["num_dropped_pairs"] = len(pairs) + len(replay) - len(mixed)
    return result


def _check_training_args(*, steps: int, lr: float, batch_size: int) -> None:
    if steps <= 0:
        raise ValueError(f"steps must be positive, got {steps}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")


def _train(
    corrector: GlossCorrector,
    pairs: list[tuple[list[str], list[str]]],
    *,
    steps: int,
    lr: float,
    batch_size: int,
    seed: int,
    progress: bool,
    desc: str,
    guard: LeakGuard | None = None,
) -> dict:
    """AdamW with short warm-up and linear decay; batches from seeded reshuffles of `pairs`.

    The global torch RNG is forked and seeded, so dropout and batch order depend only on `seed`
    (same seed, same weights on CPU) and the caller's RNG state is untouched. `guard` is checked
    here, where every training pair passes, so a leak fails loudly instead of inflating results.
    """
    if not pairs:
        raise ValueError(f"{desc}: no training pairs")
    if guard is not None:
        guard.check(pairs, desc)
    model = corrector.model
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.1, 1.0 - s / steps)
    )
    order_rng = torch.Generator().manual_seed(seed)
    order: list[int] = []
    curve: list[tuple[int, float]] = []
    started = time.perf_counter()
    model.train()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for step in tqdm(range(1, steps + 1), desc=desc, disable=not progress, mininterval=2.0):
                while len(order) < batch_size:
                    order += torch.randperm(len(pairs), generator=order_rng).tolist()
                batch, order = order[:batch_size], order[batch_size:]
                inputs = corrector.encode_pairs([pairs[i][0] for i in batch], [pairs[i][1] for i in batch])
                loss = model(**inputs).loss
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"{desc}: loss became {loss.item()} at step {step}; lower lr")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                curve.append((step, float(loss.detach())))
    finally:
        model.eval()
    tail = [loss for _, loss in curve[-max(1, steps // 10):]]
    return {
        "loss_curve": curve,
        "final_loss": float(np.mean(tail)),
        "steps": steps,
        "num_pairs": len(pairs),
        "seconds": time.perf_counter() - started,
    }
