"""Word error rate over gloss sequences, in percent, with its three error kinds kept apart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import jiwer


@dataclass(frozen=True)
class WerResult:
    wer: float  # percent
    substitutions: int
    deletions: int
    insertions: int
    reference_words: int

    def as_metrics(self, prefix: str) -> dict[str, float]:
        return {
            f"{prefix}_wer": self.wer,
            f"{prefix}_sub": self.substitutions,
            f"{prefix}_del": self.deletions,
            f"{prefix}_ins": self.insertions,
        }


def corpus_wer(refs: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]]) -> WerResult:
    """Corpus-level WER = (S + D + I) / N over all utterances (not a mean of per-sentence WERs)."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if not refs:
        raise ValueError("cannot score an empty set of utterances")
    for i, r in enumerate(refs):
        if not r:
            raise ValueError(f"reference {i} is empty; every utterance needs at least one gloss")
    out = jiwer.process_words([" ".join(r) for r in refs], [" ".join(h) for h in hyps])
    n_ref = out.hits + out.substitutions + out.deletions
    errors = out.substitutions + out.deletions + out.insertions
    return WerResult(100.0 * errors / n_ref, out.substitutions, out.deletions, out.insertions, n_ref)
