"""The sentence out: gloss -> German translator and its sacreBLEU / chrF scores."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach a model hub

import numpy as np
import pytest
from sacrebleu.metrics import BLEU, CHRF

from signkd.correction.data import LeakGuard
from signkd.correction.translate import GlossTranslator, bleu_chrf
from signkd.data.grammar import sample_sentence
from tests.test_correction_fakes import GLOSSES

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _pairs(seed: int, n: int) -> list[tuple[list[str], str]]:
    rng = np.random.default_rng(seed)
    return [(list(s.glosses), s.translation) for s in (sample_sentence(rng, 2, 4) for _ in range(n))]


def test_bleu_and_chrf_are_sacrebleus_with_an_interval():
    refs = ["es regnet stark im norden", "morgen scheint die sonne", "heute ist es leicht bewölkt", "es schneit"]
    hyps = ["es regnet im norden", "morgen scheint die sonne", "heute ist es bewölkt", "es regnet"]
    scores = bleu_chrf(hyps, refs, n_resamples=300)
    assert scores["bleu"] == pytest.approx(BLEU().corpus_score(hyps, [refs]).score, abs=0.01)
    assert scores["chrf"] == pytest.approx(CHRF().corpus_score(hyps, [refs]).score, abs=0.01)
    assert scores["bleu_ci_low"] <= scores["bleu"] <= scores["bleu_ci_high"]
    assert scores["bleu_ci_low"] < scores["bleu_ci_high"]  # the sentences differ, so resamples do
    assert bleu_chrf(refs, refs, n_resamples=50)["bleu"] == 100.0
    with pytest.raises(ValueError, match="as many"):
        bleu_chrf(hyps, refs[:2])


def test_a_translator_taught_to_echo_glosses_still_speaks_only_train_words():
    """Glosses and German words share one vocabulary (BART ties the embeddings), so nothing but
    the output restriction stops a poorly trained translator from answering in glosses."""
    pairs = _pairs(0, 40)
    translator = GlossTranslator.build(GLOSSES, [t for _, t in pairs], seed=0, d_model=32, ffn_dim=64, layers=1)
    echo = [(g, " ".join(g)) for g, _ in pairs]  # glosses as the "translation"
    translator.train(echo, steps=150, lr=3e-3, batch_size=16, seed=0, progress=False)
    words = {w for _, t in pairs for w in t.split()}
    sources = [g for g, _ in _pairs(1, 10)]
    out = translator.translate(sources, num_beams=2)
    assert len(out) == 10 and all(set(s.split()) <= words for s in out), out  # never a gloss, never <unk>
    translator.seq2seq.constraint = None  # the same model unrestricted: it echoes glosses
    free = translator.translate(sources, num_beams=2)
    assert sum(bool(set(s.split()) & set(GLOSSES)) for s in free) >= 5, free


def test_translator_learns_the_grammar_and_skips_guarded_sentences(tmp_path):
    train, held_out = _pairs(0, 240), _pairs(1, 40)
    guard = LeakGuard([g for g, _ in held_out])
    translator = GlossTranslator.build(GLOSSES, [t for _, t in train], seed=0)
    result = translator.train(train + held_out[:5], steps=150, lr=3e-3, batch_size=32, seed=0, guard=guard,
                              progress=False)
    assert result["num_dropped_pairs"] >= 5 and result["final_loss"] < 0.5
    unseen = [(g, t) for g, t in held_out if g not in [x for x, _ in train]]
    out = translator.translate([g for g, _ in unseen])
    assert bleu_chrf(out, [t for _, t in unseen], n_resamples=10)["bleu"] > 40.0
    loaded = GlossTranslator.load(translator.save(tmp_path / "translator"))
    assert loaded.translate([g for g, _ in unseen[:5]]) == out[:5]
