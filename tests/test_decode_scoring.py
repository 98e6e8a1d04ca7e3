import itertools
import math

import numpy as np
import pytest

from signkd.decode import beam_decode, decode, greedy_decode
from signkd.scoring import corpus_wer, official_wer, wer_interval


def _log_probs(path, num_classes=4, peak=0.9):
    lp = np.full((len(path), num_classes), (1 - peak) / (num_classes - 1))
    lp[np.arange(len(path)), path] = peak
    return np.log(lp)


def test_greedy_collapses_repeats_and_drops_blanks():
    assert greedy_decode(_log_probs([0, 1, 1, 0, 1, 2, 2, 0])) == [1, 1, 2]


def test_beam_matches_greedy_on_peaked_posteriors():
    lp = _log_probs([1, 1, 0, 2, 0, 2, 3, 3])
    assert beam_decode(lp, beam_width=4) == greedy_decode(lp) == [1, 2, 2, 3]


def _brute_force_best_labelling(lp, max_len=3):
    """Sum CTC path probabilities for every labelling up to max_len (exact, tiny cases only)."""
    t, c = lp.shape
    scores = {}
    for path in itertools.product(range(c), repeat=t):
        lab, prev = [], 0
        for k in path:
            if k != prev and k != 0:
                lab.append(k)
            prev = k
        p = sum(lp[i, k] for i, k in enumerate(path))
        scores[tuple(lab)] = np.logaddexp(scores.get(tuple(lab), -math.inf), p)
    return list(max(scores, key=scores.get))


def test_beam_finds_the_most_probable_labelling_where_greedy_does_not():
    # Classic case: blank is the best single frame everywhere, but label 1 summed over paths wins.
    probs = np.array([[0.4, 0.35, 0.25], [0.4, 0.35, 0.25], [0.4, 0.35, 0.25]])
    lp = np.log(probs)
    assert greedy_decode(lp) == []
    best = _brute_force_best_labelling(lp)
    assert beam_decode(lp, beam_width=8) == best
    assert best != []


def test_random_posteriors_beam_equals_exact_search():
    rng = np.random.default_rng(0)
    for _ in range(5):
        lp = np.log(rng.dirichlet(np.ones(3), size=4))
        assert beam_decode(lp, beam_width=16, prune=-1e9) == _brute_force_best_labelling(lp)


def test_decode_rejects_unknown_method():
    with pytest.raises(ValueError, match="unknown decoder"):
        decode(np.zeros((3, 3)), "viterbi")


def test_corpus_wer_counts_each_error_kind():
    refs = [["A", "B", "C"], ["D", "E"]]
    hyps = [["A", "X", "C", "Y"], []]
    r = corpus_wer(refs, hyps)
    assert (r.substitutions, r.deletions, r.insertions, r.reference_words) == (1, 2, 1, 5)
    assert r.wer == pytest.approx(80.0)


def test_corpus_wer_rejects_empty_reference_and_mismatch():
    with pytest.raises(ValueError, match="empty"):
        corpus_wer([[]], [["A"]])
    with pytest.raises(ValueError, match="hypotheses"):
        corpus_wer([["A"]], [])


def test_corpus_wer_has_a_bootstrap_interval_over_utterances():
    r = corpus_wer([["A", "B", "C"], ["D", "E"]], [["A", "X", "C", "Y"], []])
    assert (r.ci_low, r.ci_high) == wer_interval([2, 2], [3, 2])  # per-utterance errors from jiwer
    assert r.ci_low <= r.wer <= r.ci_high


# ---- bootstrap interval ----------------------------------------------------------------------


def test_interval_collapses_when_every_utterance_has_the_same_error_rate():
    # every resample then has WER 25 % exactly, whatever it draws
    assert wer_interval([1, 2, 3, 0], [4, 8, 12, 0]) == (25.0, 25.0)


def test_interval_of_one_bad_utterance_in_twenty_is_asymmetric():
    # 20 one-word utterances, one wrong: WER 5 %. A resample holds k copies of the wrong one,
    # k ~ Binomial(20, 1/20): P(k = 0) = 0.36 > 2.5 %, so the low end is 0 %; P(k <= 2) = 0.92
    # and P(k <= 3) = 0.98 straddle 97.5 %, so the high end is 3/20 = 15 %.
    low, high = wer_interval([1] + [0] * 19, [1] * 20)
    assert (low, high) == (0.0, 15.0)
    assert high - 5.0 > 5.0 - low


def test_interval_contains_the_estimate_and_widens_with_fewer_utterances():
    rng = np.random.default_rng(1)
    ref_words = rng.integers(3, 13, size=400)
    errors = rng.binomial(ref_words, rng.uniform(0.0, 0.6, size=400))
    widths = []
    for n in (400, 100, 25):
        low, high = wer_interval(errors[:n], ref_words[:n])
        assert low < 100.0 * errors[:n].sum() / ref_words[:n].sum() < high
        widths.append(high - low)
    assert widths[0] < widths[1] < widths[2]
    assert widths[2] > 1.8 * widths[0]  # about sqrt(16) = 4 times in theory


def test_interval_covers_the_population_wer_about_95_percent_of_the_time():
    rng = np.random.default_rng(2)
    covered = 0
    for trial in range(200):  # population WER: E[error rate] = 30 %
        ref_words = rng.integers(3, 13, size=60)
        errors = rng.binomial(ref_words, rng.uniform(0.0, 0.6, size=60))
        low, high = wer_interval(errors, ref_words, n_resamples=400, seed=trial)
        covered += low <= 30.0 <= high
    assert 0.88 <= covered / 200 <= 0.99


def test_interval_is_repeatable_and_ignores_utterance_order():
    rng = np.random.default_rng(3)
    ref_words = rng.integers(1, 10, size=50)
    errors = rng.binomial(ref_words, 0.3)
    first = wer_interval(errors, ref_words)
    assert wer_interval(errors, ref_words) == first
    perm = rng.permutation(50)
    assert wer_interval(errors[perm], ref_words[perm]) == first
    assert wer_interval(errors, ref_words, seed=1) != first
    narrow = wer_interval(errors, ref_words, level=0.5)
    assert first[0] < narrow[0] < narrow[1] < first[1]


def test_interval_rejects_bad_input():
    with pytest.raises(ValueError, match="per utterance"):
        wer_interval([1, 2], [3])
    with pytest.raises(ValueError, match="per utterance"):
        wer_interval([], [])
    with pytest.raises(ValueError, match="hold words"):
        wer_interval([1], [0])
    with pytest.raises(ValueError, match="level"):
        wer_interval([1], [2], level=1.0)


def test_official_wer_fills_the_interval_and_the_metrics():
    refs = [["A", "B"], ["C", "D", "E"], ["F"], ["G", "H"]]
    hyps = [["A", "B"], ["C"], ["X"], ["G", "H", "Y"]]
    r = official_wer(refs, hyps, clean="none")
    assert (r.ci_low, r.ci_high) == wer_interval([0, 2, 1, 1], [2, 3, 1, 2])
    assert r.ci_low < r.wer < r.ci_high
    m = r.as_metrics("dev")
    assert m == {"dev_wer": r.wer, "dev_sub": 1, "dev_del": 2, "dev_ins": 1,
                 "dev_wer_ci_low": round(r.ci_low, 2), "dev_wer_ci_high": round(r.ci_high, 2)}
