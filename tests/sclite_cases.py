"""Phoenix-like raw utterances, and the Phoenix kits' own shell pipelines, to check `official_wer`
against the real thing: the kit's sed/perl/grep/awk over a one-gloss-a-line CTM, then sclite.

`make_cases()` returns hand-written edge cases followed by seeded random ones: references drawn
from a small weather-gloss vocabulary holding everything either kit's clean-up touches, and
hypotheses derived from them by substitutions, deletions, insertions, CTC-style repeats, or
replaced entirely / emptied.

`run_kit()` writes the raw hypotheses as a CTM (one gloss a line, nothing for an empty one) and the
raw references as an STM, runs the kit's pipeline in bash (the expressions are those of the kit
scripts listed in `signkd.phoenix_kit`; the awk steps are re-written, same behaviour), adds
`[EMPTY]` for utterances left without a line (the kits' `mergectmstm.py`) and returns the two files
sclite is then run on.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

PLAIN = ["REGEN", "SONNE", "WOLKE", "NORD", "SUED", "MORGEN", "HEUTE", "IX", "KOMMEN", "GRAD",
         "WIE-AUSSEHEN", "NICHT-VIEL", "S+H", "__ON__", "__OFF__", "WIE", "AUSSEHEN", "ZEIGEN"]
PREFIXED = ["loc-NORD", "loc-SUED", "cl-KOMMEN", "qu-WAS", "poss-EUCH", "lh-IX", "loc-REGION",
            "neg-FROST", "loc-ZEIGEN", "cl-REGEN-PLUSPLUS", "loc-WETTERRAUM"]
MARKERS = ["__PU__", "__EMOTION__", "__LEFTHAND__", "__EPENTHESIS__", "__ON__", "__OFF__"]
LETTERS = ["A", "B", "E", "H", "L", "P", "S", "SCH", "NN"]
ODD = ["S0NNE", "HABEN2", "HABEN", "WETTERRAUM", "NORDRAUM", "XRAUM", "RAUM", "REGEN-PLUSPLUS",
       "C+M", "loc-__PU__", "ZEIGEN__PU__", "1", "01", "regen", "sonne", "ÄPFEL", "äpfel", "天气"]

# Each pair is chosen for one behaviour; the comment names it.
EDGE_CASES: list[tuple[str, str]] = [
    ("REGEN SONNE WOLKE", ""),  # empty hypothesis -> [EMPTY]
    ("REGEN", ""),  # empty hypothesis against a one-word reference
    ("NORD SUED", "__PU__ __EMOTION__"),  # hypothesis empty only after the clean-up
    ("NORD SUED", "__EPENTHESIS__"),  # ... its only line removed by grep
    ("__PU__ __LEFTHAND__", "REGEN"),  # reference empty after the 2014T clean-up
    ("__PU__", ""),  # both empty: [EMPTY] is one insertion (2014T)
    ("REGEN SONNE", "REGEN REGEN REGEN SONNE SONNE"),  # repeats: kept by 2014, merged by 2014T
    ("REGEN", "REGEN __PU__ REGEN"),  # 2014T: the removed line does not break the run
    ("NICHT-VIEL", "NICHT-VIEL NICHT-VIEL"),  # 2014T merges hyphenated glosses too
    ("GRAD", "1 01 GRAD"),  # awk: 1 == 01 as numbers
    ("__ON__ REGEN __OFF__", "__ON__ __ON__ REGEN __OFF__"),  # 2014 keeps __ON__, 2014T drops it
    ("loc-NORD cl-KOMMEN", "NORD KOMMEN"),  # prefixes: as given in the 2014 STM
    ("NORD qu-WAS poss-EUCH lh-IX", "loc-NORD qu-WAS poss-EUCH lh-IX"),  # only 2014 strips qu/poss/lh
    ("IX S+H IX", "IX S H IX"),  # spelled letters never join in a hypothesis
    ("A B C D", "A B C D"),  # ... but do in the 2014T reference
    ("BIS E R Z BERG", "BIS E R Z BERG"),
    ("X SCH A Y", "X SCH A Y"),
    ("REGEN NN P SONNE", "REGEN NN P SONNE"),
    ("A __PU__ B REGEN", "A B REGEN"),  # a removed marker blocks a join in the 2014T reference
    ("REGEN __PU__ REGEN", "REGEN"),  # ... and a repeat collapse
    ("WIE AUSSEHEN MORGEN", "WIE AUSSEHEN MORGEN"),  # joined in the 2014T reference only
    ("ZEIGEN-BILDSCHIRM", "ZEIGEN"),  # 2014: ZEIGEN at the line's end is respelt
    ("SONNE HABEN", "S0NNE HABEN2"),  # 2014 spelling variants
    ("WETTER NORD X", "WETTERRAUM NORDRAUM XRAUM"),  # RAUM: two capitals (2014), one (2014T)
    ("REGEN WETTER", "REGEN-PLUSPLUS cl-REGEN-PLUSPLUS loc-WETTERRAUM"),  # rule order
    ("ZEIGEN-BILDSCHIRM", "loc-ZEIGEN ZEIGEN__PU__ loc-__PU__"),  # rules feeding each other
    ("REGEN SONNE", "ANFANG REGEN SONNE ENDE"),  # insertions at both ends
    ("NORD SUED", "nord sued"),  # sclite ignores ASCII case ...
    ("ÄPFEL 天气", "äpfel 天气"),  # ... but not non-ASCII case
    ("B C C", "C A A"),  # sclite tie-break: 1 S 1 D 1 I where Levenshtein finds 3 S
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
    pools = [(PLAIN, 0.50), (PREFIXED, 0.12), (MARKERS, 0.10), (LETTERS, 0.16), (ODD, 0.12)]
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
        elif r < 0.36:
            hyp.extend([w] * rng.randint(2, 4))  # CTC-style repeat
        else:
            hyp.append(w)
        if rng.random() < 0.10:
            hyp.append(rng.choice(MARKERS + vocab))  # insertion, often a marker inside a run
    if rng.random() < 0.15:
        hyp.insert(0, rng.choice(vocab))
    if rng.random() < 0.15:
        hyp.append(rng.choice(vocab))
    return hyp


def make_cases(n_random: int = 260, seed: int = 2014) -> Cases:
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
    order = list(range(n))
    rng.shuffle(order)  # so that every writer's sorting is exercised
    return Cases([ids[k] for k in order], [speakers[k] for k in order],
                 [refs[k] for k in order], [hyps[k] for k in order], len(EDGE_CASES))


# ---- the kits' pipelines ----------------------------------------------------------------------
# sed expressions one per -e (the kits chain several sed processes; per line that is the same).
_LETTERS = [
    r"s|^\([A-Z]\) \([A-Z][+ ]\)|\1+\2|g", r"s|[ +]\([A-Z]\) \([A-Z]\) | \1+\2 |g",
    *[r"s|\([ +][A-Z]\) \([A-Z][ +]\)|\1+\2|g"] * 3,
    r"s|\([ +]SCH\) \([A-Z][ +]\)|\1+\2|g", r"s|\([ +]NN\) \([A-Z][ +]\)|\1+\2|g",
    r"s|\([ +][A-Z]\) \(NN[ +]\)|\1+\2|g", r"s|\([ +][A-Z]\) \([A-Z]\)$|\1+\2|g",
]
_SED_2014 = [
    "s|loc-||g", "s|cl-||g", "s|qu-||g", "s|poss-||g", "s|lh-||g", "s|S0NNE|SONNE|g", "s|HABEN2|HABEN|g",
    "s|__EMOTION__||g", "s|__PU__||g", "s|__LEFTHAND__||g",
    "s|WIE AUSSEHEN|WIE-AUSSEHEN|g", "s|ZEIGEN |ZEIGEN-BILDSCHIRM |g", "s|ZEIGEN$|ZEIGEN-BILDSCHIRM|",
    *_LETTERS, r"s|\([A-Z][A-Z]\)RAUM|\1|g", "s|-PLUSPLUS||g",
]
_SED_2014T_HYP = [
    r"s| loc-\([^ ]*\)$| \1|g", "s|-PLUSPLUS$||g", r"s| cl-\([^ ]*\)$| \1|g",
    r"s|\b\([A-Z][A-Z]*\)RAUM$|\1|g", r"s|\s*$||",
]
_SED_2014T_REF = [
    "s|__LEFTHAND__ ||g", "s| __LEFTHAND__||g", "s| __EPENTHESIS__||g", "s|__EPENTHESIS__ ||g",
    "s| __EMOTION__||g", "s|__EMOTION__ ||g",
    r"s|\b__[^_ ]*__\b||g", r"s|\bloc-\([^ ]*\)\b|\1|g", r"s|\bcl-\([^ ]*\)\b|\1|g",
    r"s|\b\([^ ]*\)-PLUSPLUS\b|\1|g", r"s|\b\([A-Z][A-Z]*\)RAUM\b|\1|g",
    "s|WIE AUSSEHEN|WIE-AUSSEHEN|g", *_LETTERS,
]
_PERL_REPEATS = r"perl -pe 'for my $k (1 .. 4) { s/(?<![\w-])(\b[A-Z]+(?![\w-])) \1(?![\w-])/$1/g }'"
_DROP = "grep -v -e __LEFTHAND__ -e __EPENTHESIS__ -e __EMOTION__"
# The kit's awk: a line whose gloss was emptied is not printed; an utterance left with no gloss
# gets its last line + [EMPTY].
_AWK_FILL = ("awk '{ if ($1 != id) { if (id != \"\" && !kept) print last \" [EMPTY]\"; id = $1; kept = 0 }"
             " last = $0; if ($5 != \"\") { kept = 1; print } }"
             " END { if (id != \"\" && !kept) print last \" [EMPTY]\" }'")
# 2014T's awk: drop a line whose gloss equals the previous line's, within one utterance.
_AWK_DEDUPE = "awk '$1 != pid || $NF != plast { print } { pid = $1; plast = $NF }'"


def _sed(exprs: list[str]) -> str:
    return "sed " + " ".join("-e '" + e + "'" for e in exprs)


KIT_HYPOTHESIS = {
    "phoenix2014": f"{_sed(_SED_2014)} | {_PERL_REPEATS} | {_DROP} | sed -e 's|\\s*$||' | {_AWK_FILL}"
                   " | sort -k1,1 -k3,3",
    "phoenix2014t": f"{_DROP} | grep -v -e ' __[^_ ]*__$' | {_sed(_SED_2014T_HYP)} | {_AWK_FILL} | {_AWK_DEDUPE}",
}
KIT_REFERENCE = {
    "phoenix2014": "sort -k1,1",  # the STM as given
    "phoenix2014t": f"sort -k1,1 | {_sed(_SED_2014T_REF)} | {_PERL_REPEATS}",
}


def missing_kit_tools() -> str | None:
    """Why the kit pipeline cannot run here (it needs bash, GNU sed, perl, grep, awk, sort), or None."""
    missing = [t for t in ("bash", "sed", "perl", "grep", "awk", "sort") if shutil.which(t) is None]
    if missing:
        return f"the kit pipeline needs {', '.join(missing)}"
    version = subprocess.run(["sed", "--version"], capture_output=True, text=True, check=False).stdout
    return None if "GNU" in version else "the kit pipeline needs GNU sed (\\b, \\s)"


def _bash(pipeline: str, src: Path, dst: Path) -> None:
    subprocess.run(["bash", "-c", f"export LC_ALL=C; cat '{src}' | {pipeline} > '{dst}'"], check=True)


def run_kit(kit: str, workdir: Path, cases: Cases) -> tuple[Path, Path]:
    """Raw CTM/STM through the kit's pipeline; returns (hypothesis CTM, reference STM) for sclite."""
    raw_ctm, raw_stm = workdir / f"{kit}.raw.ctm", workdir / f"{kit}.raw.stm"
    rows = sorted(zip(cases.ids, cases.speakers, cases.refs, cases.hyps))
    raw_ctm.write_text("".join(f"{u} 1 {j * 0.01:.3f} 0.010 {w}\n" for u, _, _, h in rows for j, w in enumerate(h)))
    raw_stm.write_text("".join(" ".join([u, "1", s, "0.0", "1.79769e+308", *r]) + "\n" for u, s, r, _ in rows))
    ctm, stm = workdir / f"{kit}.ctm", workdir / f"{kit}.stm"
    _bash(KIT_HYPOTHESIS[kit], raw_ctm, ctm)
    _bash(KIT_REFERENCE[kit], raw_stm, stm)
    # mergectmstm.py: an utterance without any CTM line gets one [EMPTY] line
    lines = ctm.read_text().splitlines()
    present = {ln.split()[0] for ln in lines}
    lines += [f"{u} 1 0.000 0.030 [EMPTY]" for u, *_ in rows if u not in present]
    ctm.write_text("".join(ln + "\n" for ln in sorted(lines, key=lambda ln: ln.split()[0])))
    return ctm, stm


def glosses_by_id(path: Path, first_word: int) -> dict[str, list[str]]:
    """Words of each utterance in a CTM (`first_word=4`, one a line) or STM (`first_word=5`)."""
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        fields = line.split()
        out.setdefault(fields[0], []).extend(fields[first_word:])
    return out
