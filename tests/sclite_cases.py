"""Deterministic Phoenix-like utterances for checking `official_wer` against the real sclite.

`make_cases()` returns hand-written edge cases followed by seeded random ones: references drawn
from a small weather-gloss vocabulary that includes everything the kit's clean-up touches, and
hypotheses derived from them by substitutions, deletions, insertions, CTC-style repeats, or
replaced entirely / emptied.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

PLAIN = ["REGEN", "SONNE", "WOLKE", "NORD", "SUED", "MORGEN", "HEUTE", "IX", "KOMMEN", "GRAD",
         "WIE-AUSSEHEN", "NICHT-VIEL", "S+H", "__ON__", "__OFF__", "WIE", "AUSSEHEN", "ZEIGEN"]
PREFIXED = ["loc-NORD", "loc-SUED", "cl-KOMMEN", "qu-WAS", "poss-EUCH", "lh-IX", "loc-REGION"]
MARKERS = ["__PU__", "__EMOTION__", "__LEFTHAND__", "__EPENTHESIS__"]
LETTERS = ["A", "B", "E", "H", "L", "P", "S", "SCH", "NN"]
ODD = ["S0NNE", "HABEN2", "HABEN", "WETTERRAUM", "REGEN-PLUSPLUS", "regen", "sonne", "ÄPFEL",
       "äpfel", "天气"]

# Each pair is chosen for one behaviour; the comment names it.
EDGE_CASES: list[tuple[str, str]] = [
    ("REGEN SONNE WOLKE", ""),  # empty hypothesis -> [EMPTY]
    ("REGEN", ""),  # empty hypothesis against a one-word reference
    ("NORD SUED", "__PU__ __EMOTION__"),  # hypothesis empty only after the clean-up
    ("__PU__ __LEFTHAND__", "REGEN"),  # reference empty after the clean-up: all insertions
    ("__PU__", ""),  # both empty after the clean-up: [EMPTY] is one insertion
    ("REGEN SONNE", "REGEN REGEN REGEN SONNE SONNE"),  # immediate repeats collapse
    ("REGEN", " ".join(["REGEN"] * 17)),  # a run of 17: four passes leave two
    ("NICHT-VIEL", "NICHT-VIEL NICHT-VIEL"),  # hyphenated glosses do not collapse
    ("__ON__ REGEN", "__ON__ __ON__ REGEN"),  # nor do __X__ glosses
    ("loc-NORD cl-KOMMEN", "NORD KOMMEN"),  # prefixes stripped on both sides
    ("NORD qu-WAS poss-EUCH lh-IX", "loc-NORD WAS EUCH IX"),
    ("IX S+H IX", "IX S H IX"),  # spelled letters joined with +
    ("A B C D", "A B C D"),  # chain at sentence start
    ("BIS E+R+Z BERG", "BIS E R Z BERG"),
    ("X SCH A Y", "X SCH A Y"),  # SCH joins like a letter
    ("REGEN NN P SONNE", "REGEN NN P SONNE"),
    ("A B", "A+B"),  # two-letter sentence: the kit's rules do not join it
    ("P BIS L", "P BIS L"),  # letters separated by a word stay apart
    ("A __PU__ B REGEN", "A B REGEN"),  # a deleted marker blocks a join in the reference
    ("WIE AUSSEHEN MORGEN", "WIE-AUSSEHEN MORGEN"),  # compound merge
    ("ZEIGEN", "ZEIGEN-BILDSCHIRM"),  # ZEIGEN at the end
    ("ZEIGEN WETTER", "ZEIGEN-BILDSCHIRM WETTER"),
    ("SONNE HABEN", "S0NNE HABEN2"),  # spelling variants
    ("WETTER REGEN", "WETTERRAUM REGEN-PLUSPLUS"),  # RAUM and -PLUSPLUS suffixes
    ("REGEN SONNE", "ANFANG REGEN SONNE"),  # insertion at the start
    ("REGEN SONNE", "REGEN SONNE ENDE"),  # insertion at the end
    ("REGEN SONNE WOLKE", "KALT WARM"),  # completely wrong
    ("NORD SUED", "nord sued"),  # sclite ignores ASCII case
    ("ÄPFEL 天气", "äpfel 天气"),  # ... but not non-ASCII case
    ("B C C", "C A A"),  # sclite tie-break: 1 S 1 D 1 I where Levenshtein finds 3 S
    ("C D", "D B"),  # sclite: 1 D 1 I where Levenshtein finds 2 S
    ("D C D C D B", "D D A A B B B"),
    ("A A A C B", "C D B C"),  # sclite: 5 errors where the minimum is 4
    ("REGEN", "A B C D E"),  # spelled letters inserted
]


@dataclass(frozen=True)
class Cases:
    ids: list[str]
    speakers: list[str]
    refs: list[list[str]]
    hyps: list[list[str]]
    n_edge: int


def _utt_id(k: int) -> str:
    # Phoenix-style ids; `-1`, `-10`, `-2` make the sort order non-numeric on purpose.
    day, suffix = k // 12, k % 12
    return f"{day % 28 + 1:02d}April_2010_Thursday_tagesschau_default-{suffix}"


def _random_ref(rng: random.Random) -> list[str]:
    pools = [(PLAIN, 0.55), (PREFIXED, 0.12), (MARKERS, 0.08), (LETTERS, 0.15), (ODD, 0.10)]
    out = []
    for _ in range(rng.randint(1, 12)):
        pool = rng.choices([p for p, _ in pools], weights=[w for _, w in pools])[0]
        out.append(rng.choice(pool))
    return out


def _mutate(ref: list[str], rng: random.Random) -> list[str]:
    mode = rng.random()
    vocab = PLAIN + PREFIXED + MARKERS + LETTERS + ODD
    if mode < 0.06:
        return []
    if mode < 0.12:
        return [rng.choice(vocab) for _ in range(rng.randint(1, 8))]  # unrelated
    hyp: list[str] = []
    for w in ref:
        r = rng.random()
        if r < 0.12:
            continue  # deletion
        if r < 0.24:
            hyp.append(rng.choice(vocab))  # substitution
        elif r < 0.34:
            hyp.extend([w] * rng.randint(2, 4))  # CTC-style repeat
        else:
            hyp.append(w)
        if rng.random() < 0.10:
            hyp.append(rng.choice(vocab))  # insertion
    if rng.random() < 0.15:
        hyp.insert(0, rng.choice(vocab))
    if rng.random() < 0.15:
        hyp.append(rng.choice(vocab))
    return hyp


def make_cases(n_random: int = 220, seed: int = 2014) -> Cases:
    rng = random.Random(seed)
    refs = [r.split() for r, _ in EDGE_CASES]
    hyps = [h.split() for _, h in EDGE_CASES]
    for _ in range(n_random):
        ref = _random_ref(rng)
        refs.append(ref)
        hyps.append(_mutate(ref, rng))
    n = len(refs)
    ids = [_utt_id(k) for k in range(n)]
    speakers = [f"signer{k % 9 + 1:02d}" for k in range(n)]
    # shuffle the order so the writers' sorting is exercised
    order = list(range(n))
    rng.shuffle(order)
    return Cases([ids[k] for k in order], [speakers[k] for k in order],
                 [refs[k] for k in order], [hyps[k] for k in order], len(EDGE_CASES))
