"""The correction step end to end on plain data: no leaks, sampled student errors, measurements."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach a model hub

import numpy as np
import pytest

import signkd.correction.train as train_module
import signkd.correction.translate as translate_module
from signkd.correction.data import LeakGuard, grammar_sentences, sample_paths, sampled_hypotheses
from signkd.correction.headroom import headroom, is_grammatical
from signkd.correction.pipeline import Grammar, SplitData, examples_markdown, run, split_metrics
from signkd.data.grammar import sample_sentence
from signkd.params import CorrectParams
from tests.test_correction_fakes import CONFUSE, GLOSSES, grammar_split, posteriors

SEED = 1234
TINY = CorrectParams(pretrained="", pretrain_steps=3, finetune_steps=3, noise_samples=600, lr=1e-3, batch_size=8,
                     grammar_sentences=3000, samples_per_video=4, sample_wer=25.0, num_beams=1, translate=True,
                     translate_steps=3)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _with_posteriors(split: SplitData) -> SplitData:
    split.log_probs = [posteriors(r) for r in split.refs]
    return split


def _leaky_data(grammar: Grammar) -> dict[str, SplitData]:
    """Dev/test made of the very sentences the correction stream draws first (short ones, so
    each is drawn again and again), and a train split that also holds a dev sentence."""
    first = grammar_sentences(grammar.seed, 40, grammar.min_signs, grammar.max_signs, GLOSSES, LeakGuard([]))
    dev, test = grammar_split(1, 12, min_signs=2, max_signs=3), grammar_split(2, 12, min_signs=2, max_signs=3)
    dev.refs[:6], test.refs[:6] = [list(s) for s in first[:6]], [list(s) for s in first[6:12]]
    dev.hyps, test.hyps = [list(r) for r in dev.refs], [list(r) for r in test.refs]
    train = grammar_split(3, 30, min_signs=2, max_signs=3)
    train.refs[0] = list(dev.refs[0])
    return {"train": _with_posteriors(train), "dev": dev, "test": test}


def _spy(monkeypatch) -> list[tuple[str, list]]:
    """Record every (desc, pairs) that reaches a training loop (pretrain, finetune, translate)."""
    seen: list[tuple[str, list]] = []
    real = train_module._train

    def spy(corrector, pairs, **kw):
        seen.append((kw["desc"], [(list(s), list(t)) for s, t in pairs]))
        return real(corrector, pairs, **kw)

    monkeypatch.setattr(train_module, "_train", spy)
    monkeypatch.setattr(translate_module, "_train", spy)
    return seen


@pytest.mark.parametrize("grammar", [Grammar(SEED, 2, 3), None], ids=["synthetic-grammar", "real-corpus-train-split"])
def test_no_dev_or_test_sentence_reaches_training(monkeypatch, grammar):
    data = _leaky_data(Grammar(SEED, 2, 3))
    excluded = {tuple(r) for split in ("dev", "test") for r in data[split].refs}
    if grammar is not None:  # without the guard the grammar draws would contain them: the test has teeth
        unguarded = grammar_sentences(SEED, TINY.grammar_sentences, 2, 3, GLOSSES, LeakGuard([]))
        assert len(excluded & {tuple(s) for s in unguarded}) >= 10
    seen = _spy(monkeypatch)
    outcome = run(TINY, data, GLOSSES, seed=SEED, clean="none", grammar=grammar, progress=False)

    assert [desc for desc, _ in seen] == ["correct: pretrain", "correct: finetune", "correct: translate"]
    for desc, pairs in seen:
        sources = [tuple(s) for s, _ in pairs]
        targets = [tuple(t) for _, t in pairs] if desc != "correct: translate" else []
        assert not excluded & set(sources + targets), desc
    pretrain_targets = {tuple(t) for _, t in seen[0][1]}
    if grammar is None:  # a real corpus pre-trains on its train references, the dev one removed
        assert pretrain_targets <= {tuple(r) for r in data["train"].refs[1:]}
    else:
        assert len(pretrain_targets) > 3 * len(data["train"].refs)  # the grammar, not just train
    m = outcome.metrics
    assert m["pretrain_dropped_pairs"] > 0 or grammar is None
    assert {"test_wer_before", "test_wer_after", "test_wer_ci_low_after", "test_wer_ci_high_before",
            "test_correct_unchanged_share", "dev_changed", "test_changed", "test_bleu", "test_chrf"} <= set(m)


def test_guard_refuses_a_leak_that_slips_through():
    guard = LeakGuard([["MORGEN", "REGEN"]])
    with pytest.raises(AssertionError, match="dev/test sentence"):
        guard.check([(["MORGEN", "REGEN"], ["MORGEN", "REGEN", "STARK"])], "finetune")
    corrector = type("C", (), {})()  # never reached: the check runs before any training
    with pytest.raises(AssertionError, match="dev/test sentence"):
        train_module._train(corrector, [(["A"], ["MORGEN", "REGEN"])], steps=1, lr=1e-3, batch_size=1, seed=0,
                            progress=False, desc="x", guard=guard)


def test_sampled_hypotheses_are_the_students_confusions_at_the_target_rate():
    refs = [list(r) for r in grammar_split(5, 60).refs]
    lps = [posteriors(r) for r in refs]
    one_best = [[GLOSSES[c - 1] for c in sample_paths(lp, 1e-3, 1, np.random.default_rng(0))[0]] for lp in lps]
    assert one_best == refs  # at (almost) zero temperature: the student's own, error-free 1-best
    kw = dict(target_wer=20.0, per_video=6, seed=0, guard=LeakGuard([]))
    errs = sampled_hypotheses(lps, refs, GLOSSES, **kw)
    assert errs.temperature > 1.0 and 15.0 < errs.wer < 25.0
    # a two-frame spike is one sign: it may be confused or lost, not split into two glosses
    assert errs.ins < errs.sub / 4, (errs.sub, errs.dele, errs.ins)
    assert len(errs.pairs) == 6 * len(refs) and errs.dropped == 0
    assert sampled_hypotheses(lps, refs, GLOSSES, **kw).pairs == errs.pairs  # seeded
    # substitutions come from what the posteriors confuse, not from a uniform draw over glosses
    single = [[(a, b) for a, b in zip(r, h) if a != b] for h, r in errs.pairs if len(h) == len(r)]
    subs = [d[0] for d in single if len(d) == 1]  # exactly one substitution, so aligned unambiguously
    assert len(subs) > 20 and sum(CONFUSE[a] == b for a, b in subs) / len(subs) > 0.9


def test_split_metrics_count_what_the_corrector_did():
    refs = [["A", "B"], ["C", "D"], ["E"], ["F", "G"]]
    hyps = [["A", "B"], ["C", "D"], ["X"], ["F"]]
    fixed = [["A", "B"], ["C", "X"], ["E"], ["F"]]  # keeps 1 of 2 correct, breaks 1, fixes 1
    m = split_metrics("test", refs, hyps, fixed, "none")
    assert m["test_correct_before"] == 2 and m["test_correct_unchanged_share"] == 0.5
    assert (m["test_changed"], m["test_fixed"], m["test_broken"]) == (2, 1, 1)
    assert m["test_wer_before"] == pytest.approx(100 * 2 / 7) and m["test_wer_after"] == pytest.approx(100 * 2 / 7)
    assert m["test_wer_ci_low_after"] <= m["test_wer_after"] <= m["test_wer_ci_high_after"]


def test_examples_show_changes_or_say_correction_not_applied():
    split = SplitData(["a", "b", "c"], [["A", "B"], ["C"], ["D"]], [["A"], ["C"], ["X"]], ["", "", ""])
    corrected = [["A", "B"], ["C"], ["X"]]
    m = split_metrics("test", split.refs, split.hyps, corrected, "none") | {"dev_changed": 0}
    text = examples_markdown(split, corrected, [], m)
    assert "| a | A B | A | A B | fixed |" in text and "| c | D | X | X | error kept |" in text
    assert "not applied" not in text
    none = split_metrics("test", split.refs, split.hyps, split.hyps, "none") | {"dev_changed": 0}
    assert "Correction not applied" in examples_markdown(split, split.hyps, [], none)


def test_every_grammar_sentence_is_grammatical_and_typical_errors_are_not_all():
    rng = np.random.default_rng(0)
    assert all(is_grammatical(sample_sentence(rng, 2, 5).glosses, 2, 5) for _ in range(3000))
    assert not is_grammatical(["NORD", "STARK"], 2, 5)  # a region needs a weather sign after it
    assert not is_grammatical(["REGEN", "MORGEN"], 2, 5)  # time comes first
    assert not is_grammatical(["REGEN", "STARK", "REGEN"], 2, 5)  # no weather twice
    assert not is_grammatical(["REGEN"], 2, 5)  # too short for this corpus
    assert not is_grammatical(["MORGEN", "STARK", "REGEN"], 2, 5)  # a degree follows a weather sign
    assert not is_grammatical(["NORD", "OST", "REGEN"], 2, 5)  # and so does a region
    assert is_grammatical(["MORGEN", "SCHNEE"], 2, 5)  # a wrong hypothesis can still be well-formed


def test_headroom_separates_invisible_from_visible_errors():
    refs = [["MORGEN", "REGEN"], ["NORD", "SONNE", "STARK"], ["HEUTE", "WIND"], ["OST", "NEBEL"]]
    hyps = [["MORGEN", "SCHNEE"], ["NORD", "STARK"], ["HEUTE", "WIND"], ["OST", "NEBEL", "NEBEL"]]
    m = headroom("test", refs, hyps, min_signs=2, max_signs=5)
    assert (m["test_errors_grammatical"], m["test_errors_ungrammatical"]) == (1, 2)
    assert m["test_wer_oracle"] == pytest.approx(100 * 1 / 9)  # only MORGEN SCHNEE stays wrong
    # the corrector's raw proposals: fixes NORD STARK, leaves OST NEBEL NEBEL, "fixes" a grammatical error
    proposals = [["MORGEN", "REGEN"], ["NORD", "SONNE", "STARK"], ["HEUTE", "WIND"], ["OST", "NEBEL", "NEBEL"]]
    m = headroom("test", refs, hyps, min_signs=2, max_signs=5, proposals=proposals)
    assert m["test_ungrammatical_fixed_ungated"] == 1


def test_a_corpus_whose_train_sentences_are_all_dev_or_test_trains_nothing_and_changes_nothing():
    dev = grammar_split(1, 4)
    train = _with_posteriors(SplitData(["t0", "t1"], dev.refs[:2], dev.refs[:2], dev.translations[:2]))
    outcome = run(TINY, {"train": train, "dev": dev, "test": grammar_split(2, 4)}, GLOSSES, seed=SEED, clean="none",
                  grammar=None, progress=False)
    m = outcome.metrics
    assert (m["pretrain_sentences"], m["finetune_pairs"]) == (0, 0) and outcome.translator is None
    assert outcome.curves == {} and m["dev_changed"] == 0 and m["test_wer_after"] == m["test_wer_before"]
