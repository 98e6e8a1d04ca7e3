"""How much a text-only corrector could fix at most, on the synthetic corpus.

A corrector sees only the glosses. A wrong hypothesis that is itself a sentence of the corpus's
grammar ("MORGEN REGEN" for "MORGEN SCHNEE") looks exactly like a right one, so no corrector
that keeps well-formed input can fix it; only ungrammatical hypotheses ("NORD STARK": a region
must precede a weather sign) carry a signal. `headroom` counts both kinds and scores the
oracle that fixes every ungrammatical hypothesis perfectly: the best WER such a corrector can
reach. Given the corrector's raw (ungated) proposals it also counts how many of those
ungrammatical errors the model itself fixes: the evidence behind a small or absent gain.
"""

from __future__ import annotations

from collections.abc import Sequence

from signkd.data.grammar import DEGREES, REGIONS, TIMES, WEATHER
from signkd.scoring import official_wer, utterance_counts


def _category(gloss: str) -> str:
    for cat, names in (("T", TIMES), ("R", REGIONS), ("W", WEATHER), ("D", DEGREES)):
        if gloss in names:
            return cat
    return "?"


def is_grammatical(glosses: Sequence[str], min_signs: int, max_signs: int) -> bool:
    """Whether `signkd.data.grammar.sample_sentence` can produce this sequence: an optional time
    sign first, then clauses [region] weather [degree], no weather or region twice (until all
    of its kind are used)."""
    if not min_signs <= len(glosses) <= max_signs:
        return False
    cats = [_category(g) for g in glosses]
    if "?" in cats or "W" not in cats or "T" in cats[1:]:
        return False
    for i, c in enumerate(cats):
        if c == "R" and (i + 1 >= len(cats) or cats[i + 1] != "W"):
            return False
        if c == "D" and cats[i - 1] != "W":
            return False
    seen: set[str] = set()
    for g, c in zip(glosses, cats):  # a region or weather repeats only once all of its kind are used
        if c in "RW" and g in seen and not set(REGIONS if c == "R" else WEATHER) <= seen:
            return False
        seen.add(g)
    return True


def headroom(split: str, refs: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]], *, min_signs: int,
             max_signs: int, clean: str = "none", proposals: Sequence[Sequence[str]] | None = None) -> dict:
    """Wrong hypotheses that are / are not grammatical, the oracle WER described above and, with
    `proposals`, how many ungrammatical errors the corrector's ungated proposal turns right."""
    wrong = [sum(c[:3]) > 0 for c in utterance_counts(refs, hyps, clean=clean)]
    detectable = [w and not is_grammatical(h, min_signs, max_signs) for w, h in zip(wrong, hyps)]
    oracle = [list(r) if d else list(h) for r, h, d in zip(refs, hyps, detectable)]
    out = {
        f"{split}_errors_grammatical": sum(wrong) - sum(detectable),
        f"{split}_errors_ungrammatical": sum(detectable),
        f"{split}_wer_oracle": official_wer(refs, oracle, clean=clean, n_resamples=1).wer,
    }
    if proposals is not None:
        right = [sum(c[:3]) == 0 for c in utterance_counts(refs, proposals, clean=clean)]
        out[f"{split}_ungrammatical_fixed_ungated"] = sum(d and r for d, r in zip(detectable, right))
    return out
