"""Intervals for multi-seed studies: how far a model's WER, or a difference between two models,
would move if it were trained again (another seed) and tested again (other utterances).

A study trains each model once per seed and scores every run on the same test utterances, so
seeds and utterances are crossed, not nested. Two intervals are reported:

* `test_wer_ci_*` (two-level): each bootstrap replicate draws the seeds with replacement, and
  then the utterances with replacement, the same draw for every drawn seed (the utterances are
  one shared test set: drawing them independently per seed would average each utterance's
  difficulty away and make the interval too narrow). It counts the spread between seeds, which
  is what a reader means by "train it again and you get about this".
* `test_wer_utt_ci_*` (utterances only): the seeds are held fixed. It answers a narrower
  question, the WER of exactly these trained models on other test utterances.

Comparisons between two models that share a seed (same teacher, same data) are paired: each
replicate draws the same seeds and the same utterances for both, so what a seed or an utterance
does to both cancels. With five seeds a percentile bootstrap over seeds is itself coarse; the
per-seed differences and how many seeds favour each side are reported beside it.

Written here rather than taken from scipy.stats.bootstrap: that resamples one level of
independent observations and has no crossed seed x utterance design.
"""

from __future__ import annotations

import numpy as np

from signkd.scoring import BOOTSTRAP_RESAMPLES, CI_LEVEL

CHUNK = 200  # replicates per vectorised step (memory ~ CHUNK x seeds x utterances x 8 bytes)


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def bootstrap_wers(errors: np.ndarray, ref_words: np.ndarray, *, resample_seeds: bool,
                   n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> np.ndarray:
    """Replicates of the mean-over-seeds corpus WER (%); errors [S, U] per seed and utterance,
    ref_words [U]. Seeds drawn with replacement when `resample_seeds`, utterances always, one draw
    shared by every seed of a replicate. Signed errors (differences of two models) work alike."""
    errors = np.asarray(errors, dtype=np.float64)
    ref_words = np.asarray(ref_words, dtype=np.float64)
    n_seeds, n_utts = errors.shape
    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, n_resamples, CHUNK):
        b = min(CHUNK, n_resamples - start)
        seeds = rng.integers(0, n_seeds, size=(b, n_seeds)) if resample_seeds else np.tile(np.arange(n_seeds), (b, 1))
        utts = rng.integers(0, n_utts, size=(b, n_utts))
        drawn = errors[seeds[:, :, None], utts[:, None, :]]  # [b, S, U]
        refs = ref_words[utts].sum(1)  # [b]
        keep = refs > 0
        out.append((drawn.sum(2).mean(1) / np.maximum(refs, 1.0))[keep] * 100.0)
    return np.concatenate(out)


def wer_intervals(errors: np.ndarray, ref_words: np.ndarray, level: float = CI_LEVEL) -> dict[str, float]:
    """The two-level interval (`ci_*`) and the utterance-only one (`utt_ci_*`) of the mean WER."""
    two = _percentiles(bootstrap_wers(errors, ref_words, resample_seeds=True), level)
    utt = _percentiles(bootstrap_wers(errors, ref_words, resample_seeds=False), level)
    return {"ci_low": two[0], "ci_high": two[1], "utt_ci_low": utt[0], "utt_ci_high": utt[1]}


def paired_difference(first: np.ndarray, second: np.ndarray, ref_words: np.ndarray,
                      level: float = CI_LEVEL) -> dict:
    """How much better `first` is than `second` (test WER points, positive when `first` has the
    lower WER), both [S, U] with row s the same seed. Returns the mean, the two-level paired
    interval, the utterance-only paired interval, the per-seed differences and `seeds_better`
    ("k/n": seeds where `first` is strictly better)."""
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    if first.shape != second.shape:
        raise ValueError(f"a paired comparison needs the same seeds and utterances: {first.shape} vs {second.shape}")
    refs = np.asarray(ref_words, dtype=np.float64)
    diff = second - first  # errors `first` avoids, per seed and utterance
    per_seed = diff.sum(1) / refs.sum() * 100.0
    two = _percentiles(bootstrap_wers(diff, refs, resample_seeds=True), level)
    utt = _percentiles(bootstrap_wers(diff, refs, resample_seeds=False), level)
    return {"mean": round(float(per_seed.mean()), 3), "ci_low": round(two[0], 3), "ci_high": round(two[1], 3),
            "utt_ci_low": round(utt[0], 3), "utt_ci_high": round(utt[1], 3),
            "seed_diffs": [round(float(d), 3) for d in per_seed],
            "seeds_better": f"{int((per_seed > 0).sum())}/{len(per_seed)}"}


def verdict(name_first: str, name_second: str, paired: dict) -> str:
    """The comparison in words: resolved only when the two-level interval excludes zero."""
    mean, low, high = paired["mean"], paired["ci_low"], paired["ci_high"]
    span = f"{mean:+.2f} points [{low:+.2f}, {high:+.2f}], {paired['seeds_better']} seeds favour {name_first}"
    if low > 0:
        return f"{name_first} beats {name_second}: {span} (resolved)"
    if high < 0:
        return f"{name_second} beats {name_first}: {span} (resolved)"
    return f"{name_first} vs {name_second}: {span}; not resolved (the interval spans 0)"
