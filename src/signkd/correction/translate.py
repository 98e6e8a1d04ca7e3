"""A sentence out: gloss sequence -> spoken-language sentence, scored with sacreBLEU and chrF.

Glosses are not what a deaf signer's audience reads; corpora with translations (the synthetic
corpus, Phoenix-2014T) pair each video with a German sentence. The translator is a seq2seq of
the corrector's kind (a small BART over a word-level tokenizer, trained offline, or any
configured checkpoint) trained on the train split's (glosses, translation) pairs only, with
every dev/test gloss sentence removed by the same `LeakGuard`. It reads the corrected glosses,
so its BLEU measures the whole pipeline; BLEU from the reference glosses is reported beside it
as the translator's own ceiling.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sacrebleu.metrics import BLEU, CHRF

from signkd.correction.constrain import VocabularyConstraint
from signkd.correction.data import LeakGuard
from signkd.correction.model import GlossCorrector
from signkd.correction.train import _check_training_args, _train

BOOTSTRAP_RESAMPLES = 1000


class GlossTranslator:
    """Translates gloss sequences; `seq2seq` is a GlossCorrector used without its gate."""

    def __init__(self, seq2seq: GlossCorrector):
        self.seq2seq = seq2seq

    @classmethod
    def build(cls, glosses: Sequence[str], translations: Sequence[str], *, pretrained: str = "", seed: int = 0,
              **size) -> GlossTranslator:
        """A fresh translator. Offline default: one word-level vocabulary of glosses and the
        train translations' words (BART shares its embedding table), generation restricted to
        those words. With `pretrained`, that checkpoint's own tokenizer and no restriction."""
        words = list(dict.fromkeys(w for t in translations for w in t.split()))
        if not words:
            raise ValueError("no translation words: the translator needs (glosses, translation) pairs")
        if pretrained:
            return cls(GlossCorrector.build(pretrained=pretrained, seed=seed, **size))
        seq2seq = GlossCorrector.build([*glosses, *(w for w in words if w not in set(glosses))], seed=seed, **size)
        seq2seq.vocab, seq2seq.constraint = words, VocabularyConstraint(seq2seq.tokenizer, words)
        return cls(seq2seq)

    def train(self, pairs: Sequence[tuple[Sequence[str], str]], *, steps: int, lr: float, batch_size: int, seed: int,
              guard: LeakGuard | None = None, progress: bool = True) -> dict:
        """Fit on (glosses, translation) pairs; pairs whose glosses are guarded are dropped."""
        _check_training_args(steps=steps, lr=lr, batch_size=batch_size)
        data = [(list(g), t.split()) for g, t in pairs if t.strip()]
        if guard is not None:
            data = [(g, t) for g, t in data if g not in guard]
        result = _train(self.seq2seq, data, steps=steps, lr=lr, batch_size=batch_size, seed=seed,
                        progress=progress, desc="correct: translate")
        result["num_dropped_pairs"] = len(pairs) - len(data)
        return result

    def translate(self, glosses: Sequence[Sequence[str]], *, num_beams: int = 4) -> list[str]:
        """One sentence per gloss sequence (free-running beam search; up to 4 words a gloss)."""
        if not glosses:
            return []
        return [" ".join(words) for words in self.seq2seq.generate(glosses, num_beams=num_beams, length_ratio=4.0)]

    def save(self, directory: str | Path) -> Path:
        return self.seq2seq.save(directory)

    @classmethod
    def load(cls, directory: str | Path) -> GlossTranslator:
        return cls(GlossCorrector.load(directory))


def bleu_chrf(hyps: Sequence[str], refs: Sequence[str], *, seed: int = 0,
              n_resamples: int = BOOTSTRAP_RESAMPLES) -> dict[str, float]:
    """sacreBLEU corpus BLEU (default 13a tokenization, exp smoothing) with a 95% percentile
    bootstrap interval over sentences (as for WER), and chrF."""
    if len(hyps) != len(refs) or not refs:
        raise ValueError(f"need as many hypotheses as references (got {len(hyps)} and {len(refs)}), at least one")
    metric = BLEU()
    corpus = metric.corpus_score(list(hyps), [list(refs)])
    stats = [metric.corpus_score([h], [[r]]) for h, r in zip(hyps, refs)]
    counts = np.array([s.counts for s in stats])
    totals = np.array([s.totals for s in stats])
    lengths = np.array([[s.sys_len, s.ref_len] for s in stats])
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(n_resamples):
        pick = rng.integers(len(stats), size=len(stats))
        sys_len, ref_len = lengths[pick].sum(0).tolist()
        scores.append(BLEU.compute_bleu(counts[pick].sum(0).tolist(), totals[pick].sum(0).tolist(), sys_len, ref_len,
                                        smooth_method="exp").score)
    low, high = np.percentile(scores, [2.5, 97.5]).tolist()
    return {"bleu": round(corpus.score, 2), "bleu_ci_low": round(low, 2), "bleu_ci_high": round(high, 2),
            "chrf": round(CHRF().corpus_score(list(hyps), [list(refs)]).score, 2)}
