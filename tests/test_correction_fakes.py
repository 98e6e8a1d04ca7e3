"""Stand-ins for the int8 student in correction tests: CTC posteriors with known confusions.

Shared by the tests/test_correction_*.py files (imported from here), and checked below.

`posteriors` builds what a peaky CTC recogniser emits for a reference: blank frames, and per
gloss two frames whose mass sits on the gloss, with some on a confusable gloss and on blank.
Sampling them at a raised temperature yields the student-like errors the correct stage
fine-tunes on, without training a recogniser in a unit test.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from signkd.correction.pipeline import SplitData
from signkd.data.grammar import sample_sentence

GLOSSES = ["ABEND", "FROST", "GEWITTER", "HEUTE", "KALT", "MEHR", "MORGEN", "NACHT", "NEBEL", "NORD", "OST", "REGEN",
           "SCHNEE", "SCHOEN", "SONNE", "STARK", "SUED", "WARM", "WENIG", "WEST", "WIND", "WOLKE"]
# what the fake student confuses each gloss with (sign-alike pairs)
CONFUSE = {g: GLOSSES[(i + 5) % len(GLOSSES)] for i, g in enumerate(GLOSSES)}


def posteriors(ref: Sequence[str], confidence: float = 6.0) -> np.ndarray:
    """[T, 1 + V] log-probabilities (class 0 blank) for one reference."""
    idx = {g: i + 1 for i, g in enumerate(GLOSSES)}
    rows = []
    for g in ref:
        rows += [_frame(0, None, confidence), _frame(idx[g], idx[CONFUSE[g]], confidence),
                 _frame(idx[g], idx[CONFUSE[g]], confidence)]
    rows.append(_frame(0, None, confidence))
    logits = np.stack(rows)
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def _frame(best: int, alt: int | None, confidence: float) -> np.ndarray:
    row = np.full(len(GLOSSES) + 1, -3.0 * confidence)  # unrelated glosses: far down, as in a trained CTC model
    row[0] = -confidence / 2 if best else 0.0
    if alt is not None:
        row[alt] = -confidence / 2
    row[best] = 0.0
    return row


def grammar_split(seed: int, n: int, translations: bool = True, min_signs: int = 2, max_signs: int = 5) -> SplitData:
    """`n` grammar sentences as a split whose hypotheses are the references."""
    rng = np.random.default_rng(seed)
    sents = [sample_sentence(rng, min_signs, max_signs) for _ in range(n)]
    refs = [list(s.glosses) for s in sents]
    return SplitData([f"u{seed}_{i}" for i in range(n)], refs, [list(r) for r in refs],
                     [s.translation if translations else "" for s in sents])


def test_the_fake_student_decodes_its_reference_and_knows_its_confusions():
    """The stand-in must behave like a trained CTC model, or the tests built on it prove nothing."""
    from signkd.inference import DecodeConfig, glosses_from_log_probs

    ref = ["MORGEN", "NORD", "REGEN", "STARK"]
    lp = posteriors(ref)
    assert np.allclose(np.exp(lp).sum(axis=1), 1.0)
    assert glosses_from_log_probs(lp, GLOSSES, DecodeConfig("beam", 5)) == ref
    spike = lp[1]  # frames: blank, MORGEN, MORGEN, blank, NORD, ...
    gloss, alt = GLOSSES.index("MORGEN") + 1, GLOSSES.index(CONFUSE["MORGEN"]) + 1
    assert spike.argmax() == gloss and spike[alt] > np.delete(spike, [0, gloss, alt]).max() + 5
