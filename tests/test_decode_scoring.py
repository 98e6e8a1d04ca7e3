import itertools
import math

import numpy as np
import pytest

from signkd.decode import beam_decode, decode, greedy_decode
from signkd.scoring import corpus_wer


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
