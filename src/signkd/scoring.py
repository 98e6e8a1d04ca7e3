"""Word error rate over gloss sequences, in percent, with its three error kinds kept apart.

Two scorers live here:

* `corpus_wer` -- plain Levenshtein WER (jiwer) over the glosses exactly as given. Fast, no
  clean-up; kept for callers that want the raw number.
* `official_wer` -- the number the Phoenix evaluation kit reports: the kit's gloss clean-up
  (`clean_phoenix_glosses`), then NIST sclite's alignment (`sclite_alignment_counts`). It equals
  `sclite_wer` run on the CTM/STM files that `write_official_files` writes (the test suite
  checks this against the real `sclite` of the Debian package `sctk`).

Why `official_wer` does not use jiwer: sclite aligns with weighted costs (correct 0,
substitution 4, insertion 3, deletion 3) and breaks ties substitution > deletion > insertion,
while jiwer minimises the plain edit count. Measured on random gloss pairs, about 6 % of
utterances get a different S/D/I split (reference `B C C`, hypothesis `C A A`: jiwer S=3,
sclite S=1 D=1 I=1) and about 0.05 % a different total (reference `A A A C B`, hypothesis
`C D B C`: jiwer 4 errors, sclite D=3 I=2). The alignment is therefore re-implemented exactly
as sclite does it.

Other sclite behaviour reproduced by `official_wer` (each checked against sclite 2.4.10):

* words are compared case-insensitively for ASCII letters only (sclite without `-s`):
  `nord` == `NORD`, but `ÄPFEL` != `äpfel`;
* an empty hypothesis is written as the single word `[EMPTY]` (as the kit's `preprocess.sh`
  and `mergectmstm.py` do) and sclite scores that as an ordinary word: against an n-word
  reference it is 1 substitution + (n-1) deletions, i.e. the same total as n deletions but a
  different split; against an empty reference it is 1 insertion;
* an empty reference segment is allowed: every hypothesis word is an insertion;
* sclite lower-cases utterance ids too, so the writers refuse ids equal up to ASCII case.

Tokens that sclite parses specially (`@` is a null word, `(WORD)` is optionally deletable,
`{ / }` build alternations, `<...>` as a first STM word is a segment label) and tokens with
whitespace are rejected with ValueError, so the files we write always mean what we scored.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import jiwer

from signkd.io import write_text

EMPTY_HYPOTHESIS = "[EMPTY]"
# The kit's ground-truth STM files give each utterance one segment covering all time.
STM_SEGMENT_END = "1.79769e+308"
CTM_WORD_DURATION = 0.01


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


def _result(sub: int, dele: int, ins: int, n_ref: int) -> WerResult:
    if n_ref <= 0:
        raise ValueError("cannot compute WER: the references hold no words")
    return WerResult(100.0 * (sub + dele + ins) / n_ref, sub, dele, ins, n_ref)


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


# --------------------------------------------------------------------------------------------
# The Phoenix-2014 kit's clean-up (evaluation/preprocess.sh), re-expressed in Python.
#
# The kit runs a chain of sed/perl substitutions over text; its rules are written for a
# sentence (they join neighbouring letters, merge `WIE AUSSEHEN`, collapse `X X`), and the
# kit's ground-truth STM files carry their result (`S+H`, `WIE-AUSSEHEN`, no `loc-`). We apply
# every rule, in the kit's order and with its exact (sometimes quirky) regular expressions, to
# the space-joined gloss sentence. Rules marked [sentence] can only fire across glosses: the
# kit's script, fed a CTM file with one gloss per line, leaves them without effect, which is
# why published systems that score through it see no letter joining or repeat collapsing.
# Character classes are ASCII (`re.ASCII`), as in sed/perl over bytes.
# --------------------------------------------------------------------------------------------

# 1. annotation prefixes deleted wherever they occur (location, classifier, question,
#    possessive, left hand), then two spelling variants normalised.
_PREFIXES = ("loc-", "cl-", "qu-", "poss-", "lh-")
_VARIANTS = (("S0NNE", "SONNE"), ("HABEN2", "HABEN"))
# 2. non-manual / pause markers deleted (the gloss vanishes; `__ON__`/`__OFF__` are kept,
#    as in the kit's reference STM files).
_MARKERS = ("__EMOTION__", "__PU__", "__LEFTHAND__")
# 3.-9. compound merges and spelled-letter joining, in order; each pattern runs globally.
_SENTENCE_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.ASCII), r)
    for p, r in (
        (r"WIE AUSSEHEN", "WIE-AUSSEHEN"),  # 3a [sentence] two glosses -> one compound
        (r"ZEIGEN ", "ZEIGEN-BILDSCHIRM "),  # 3b ZEIGEN (show) means "show on screen"
        (r"ZEIGEN$", "ZEIGEN-BILDSCHIRM"),  # 3c ... also as the last gloss
        (r"^([A-Z]) ([A-Z][+ ])", r"\1+\2"),  # 4 [sentence] sentence opens with two letters
        (r"[ +]([A-Z]) ([A-Z]) ", r" \1+\2 "),  # 5 [sentence] two letters inside the sentence
        (r"([ +][A-Z]) ([A-Z][ +])", r"\1+\2"),  # 6 [sentence] extend a letter chain (x3:
        (r"([ +][A-Z]) ([A-Z][ +])", r"\1+\2"),  #   non-overlapping matches need three
        (r"([ +][A-Z]) ([A-Z][ +])", r"\1+\2"),  #   passes to join long chains)
        (r"([ +]SCH) ([A-Z][ +])", r"\1+\2"),  # 7 [sentence] the letter cluster SCH joins too
        (r"([ +]NN) ([A-Z][ +])", r"\1+\2"),  # 8 [sentence] ... and NN, on either side
        (r"([ +][A-Z]) (NN[ +])", r"\1+\2"),
        (r"([ +][A-Z]) ([A-Z])$", r"\1+\2"),  # 9 [sentence] two letters closing the sentence
        (r"([A-Z][A-Z])RAUM", r"\1"),  # 10 `...RAUM` (area) suffix dropped: WETTERRAUM -> WETTER
        (r"-PLUSPLUS", ""),  # 11 repetition marker dropped: REGEN-PLUSPLUS -> REGEN
    )
)
# 12. [sentence] an immediate repeat of a plain gloss (letters A-Z only; not `NICHT-VIEL`,
#     `S+H` or `__ON__`) collapses; the kit runs the substitution four times, so a run of up
#     to 16 equal glosses becomes one.
_REPEAT = re.compile(r"(?<![\w-])(\b[A-Z]+(?![\w-])) \1(?![\w-])", re.ASCII)
_REPEAT_PASSES = 4
# 13. any gloss still containing one of these is dropped (the kit's final `grep -v`).
_DROPPED_IF_CONTAINING = ("__LEFTHAND__", "__EPENTHESIS__", "__EMOTION__")


def clean_phoenix_glosses(glosses: Sequence[str]) -> list[str]:
    """Apply the Phoenix-2014 evaluation kit's clean-up to one gloss sequence.

    Rules, in the kit's order (see the numbered comments above for the exact patterns):
     1. delete `loc-`, `cl-`, `qu-`, `poss-`, `lh-` wherever they occur; `S0NNE` -> `SONNE`,
        `HABEN2` -> `HABEN`;
     2. delete `__EMOTION__`, `__PU__`, `__LEFTHAND__` (`__ON__`, `__OFF__` stay);
     3. `WIE AUSSEHEN` -> `WIE-AUSSEHEN`; `ZEIGEN` -> `ZEIGEN-BILDSCHIRM`;
     4.-9. join spelled single letters with `+` (`A B C` -> `A+B+C`, also `SCH` and `NN` as
        letters), but only between glosses separated by exactly one space -- a gloss deleted in
        step 2 leaves two spaces and so blocks a join, as in the kit;
    10. drop the `RAUM` suffix after two capitals (`WETTERRAUM` -> `WETTER`);
    11. drop `-PLUSPLUS`;
    12. collapse immediate repeats of plain A-Z glosses (four passes, as the kit does);
    13. drop any gloss still containing `__LEFTHAND__`, `__EPENTHESIS__` or `__EMOTION__`.

    Returns the cleaned glosses; an empty list means an empty hypothesis (`[EMPTY]` in a CTM).
    """
    text = " ".join(glosses)
    for prefix in _PREFIXES:
        text = text.replace(prefix, "")
    for old, new in _VARIANTS:
        text = text.replace(old, new)
    for marker in _MARKERS:
        text = text.replace(marker, "")
    for pattern, repl in _SENTENCE_RULES:
        text = pattern.sub(repl, text)
    for _ in range(_REPEAT_PASSES):
        text = _REPEAT.sub(r"\1", text)
    return [g for g in text.split() if not any(m in g for m in _DROPPED_IF_CONTAINING)]


def _no_clean(glosses: Sequence[str]) -> list[str]:
    return list(glosses)


CLEANERS: dict[str, Callable[[Sequence[str]], list[str]]] = {
    "phoenix": clean_phoenix_glosses,
    "none": _no_clean,
}


def _cleaner(clean: str) -> Callable[[Sequence[str]], list[str]]:
    try:
        return CLEANERS[clean]
    except KeyError:
        raise ValueError(f"unknown clean-up {clean!r}; choose one of {sorted(CLEANERS)}") from None


# --------------------------------------------------------------------------------------------
# sclite's alignment
# --------------------------------------------------------------------------------------------

_COST_SUB, _COST_INS, _COST_DEL = 4, 3, 3  # sclite's wwd_WORD weights; correct costs 0
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _check_token(token: str, what: str) -> None:
    if not token or any(c.isspace() for c in token):
        raise ValueError(f"{what}: gloss {token!r} is empty or contains whitespace")
    if (
        token in ("@", "{", "}", "/")
        or (token.startswith("(") and token.endswith(")"))
        or (token.startswith("<") and token.endswith(">"))
    ):
        raise ValueError(f"{what}: gloss {token!r} has a special meaning to sclite; rename it")


def sclite_alignment_counts(ref: Sequence[str], hyp: Sequence[str]) -> tuple[int, int, int, int]:
    """(correct, substitutions, deletions, insertions) of the alignment sclite would choose.

    Dynamic programming with sclite's weights (substitution 4, insertion 3, deletion 3,
    match 0); at each cell a substitution/match wins ties, then a deletion, then an insertion;
    the path is traced back from the end. Words match case-insensitively for ASCII letters.
    An empty `hyp` is taken literally (all deletions); `official_wer` passes `[EMPTY]` instead.
    """
    r = [w.translate(_ASCII_LOWER) for w in ref]
    h = [w.translate(_ASCII_LOWER) for w in hyp]
    n, m = len(r), len(h)
    # back: 0 = diagonal (match or substitution), 1 = deletion (ref only), 2 = insertion.
    prev = [_COST_INS * b for b in range(m + 1)]
    back = [bytearray([2]) * (m + 1)]
    for a in range(1, n + 1):
        cur = [prev[0] + _COST_DEL] + [0] * m
        row = bytearray(m + 1)
        row[0] = 1
        ra = r[a - 1]
        for b in range(1, m + 1):
            sub = prev[b - 1] + (0 if ra == h[b - 1] else _COST_SUB)
            dele = prev[b] + _COST_DEL
            ins = cur[b - 1] + _COST_INS
            if sub <= dele and sub <= ins:
                cur[b] = sub
            elif dele < ins:
                cur[b], row[b] = dele, 1
            else:
                cur[b], row[b] = ins, 2
        back.append(row)
        prev = cur
    c = s = d = i = 0
    a, b = n, m
    while a > 0 or b > 0:
        step = back[a][b]
        if step == 0:
            if r[a - 1] == h[b - 1]:
                c += 1
            else:
                s += 1
            a, b = a - 1, b - 1
        elif step == 1:
            d, a = d + 1, a - 1
        else:
            i, b = i + 1, b - 1
    return c, s, d, i


def official_wer(
    refs: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]], *, clean: str = "phoenix"
) -> WerResult:
    """Corpus WER as the dataset kit + sclite report it, with S, D and I kept apart.

    `clean` picks the clean-up applied to references and hypotheses alike ("phoenix": the
    Phoenix-2014 kit's rules, see `clean_phoenix_glosses`; "none": glosses as given). An
    empty (cleaned) hypothesis is scored as the word `[EMPTY]`, and words are aligned the way
    sclite aligns them (`sclite_alignment_counts`). References may be empty after cleaning as
    long as the corpus holds at least one reference word.
    """
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if not refs:
        raise ValueError("cannot score an empty set of utterances")
    cleaner = _cleaner(clean)
    sub = dele = ins = n_ref = 0
    for k, (ref, hyp) in enumerate(zip(refs, hyps)):
        r, h = cleaner(ref), cleaner(hyp) or [EMPTY_HYPOTHESIS]
        for tok in r:
            _check_token(tok, f"reference {k}")
        for tok in h:
            _check_token(tok, f"hypothesis {k}")
        c, s, d, i = sclite_alignment_counts(r, h)
        sub, dele, ins, n_ref = sub + s, dele + d, ins + i, n_ref + len(r)
    return _result(sub, dele, ins, n_ref)


# --------------------------------------------------------------------------------------------
# CTM / STM files and the real sclite
# --------------------------------------------------------------------------------------------


def _check_ids(ids: Sequence[str], n: int, what: str) -> None:
    if len(ids) != n:
        raise ValueError(f"{len(ids)} ids but {n} {what}")
    seen: set[str] = set()
    for u in ids:
        if not u or any(c.isspace() for c in u):
            raise ValueError(f"utterance id {u!r} is empty or contains whitespace")
        key = u.translate(_ASCII_LOWER)  # sclite compares ids case-insensitively
        if key in seen:
            raise ValueError(f"utterance id {u!r} appears twice (sclite ignores ASCII case)")
        seen.add(key)


def write_ctm(path: str | os.PathLike, ids: Sequence[str], hyps: Sequence[Sequence[str]]) -> Path:
    """Write hypotheses as a CTM file: `<id> 1 <start> <dur> <gloss>`, one gloss a line.

    Utterances are sorted by id (as the kit sorts them); glosses get consecutive 10 ms slots.
    An empty hypothesis is written as one `[EMPTY]` line so that sclite aligns every
    utterance. Glosses are written as given: clean them first (`write_official_files`).
    """
    _check_ids(ids, len(hyps), "hypotheses")
    lines = []
    for u, hyp in sorted(zip(ids, hyps), key=lambda p: p[0]):
        words = list(hyp) or [EMPTY_HYPOTHESIS]
        for j, w in enumerate(words):
            _check_token(w, f"hypothesis {u}")
            lines.append(f"{u} 1 {j * CTM_WORD_DURATION:.3f} {CTM_WORD_DURATION:.3f} {w}\n")
    write_text(path, "".join(lines))
    return Path(path)


def write_stm(
    path: str | os.PathLike,
    ids: Sequence[str],
    refs: Sequence[Sequence[str]],
    *,
    speakers: Sequence[str] | None = None,
) -> Path:
    """Write references as an STM file: `<id> 1 <speaker> 0.0 1.79769e+308 <glosses>`.

    One segment per utterance spanning all time, sorted by id, like the kit's ground-truth
    STM files. `speakers` (e.g. the signer of each utterance) only groups sclite's per-speaker
    report; it defaults to `signer`.
    """
    _check_ids(ids, len(refs), "references")
    if speakers is None:
        speakers = ["signer"] * len(ids)
    if len(speakers) != len(ids):
        raise ValueError(f"{len(speakers)} speakers but {len(ids)} ids")
    lines = []
    for u, spk, ref in sorted(zip(ids, speakers, refs), key=lambda p: p[0]):
        if not spk or any(c.isspace() for c in spk):
            raise ValueError(f"speaker {spk!r} of {u} is empty or contains whitespace")
        for w in ref:
            _check_token(w, f"reference {u}")
        lines.append(" ".join([u, "1", spk, "0.0", STM_SEGMENT_END, *ref]) + "\n")
    write_text(path, "".join(lines))
    return Path(path)


def write_official_files(
    directory: str | os.PathLike,
    split: str,
    ids: Sequence[str],
    refs: Sequence[Sequence[str]],
    hyps: Sequence[Sequence[str]],
    *,
    clean: str = "phoenix",
    speakers: Sequence[str] | None = None,
) -> tuple[Path, Path]:
    """Clean references and hypotheses, write `<directory>/<split>.ctm` and `<split>.stm`.

    sclite on these two files gives the same numbers as `official_wer(refs, hyps, clean=clean)`.
    """
    cleaner = _cleaner(clean)
    directory = Path(directory)
    ctm = write_ctm(directory / f"{split}.ctm", ids, [cleaner(h) for h in hyps])
    stm = write_stm(directory / f"{split}.stm", ids, [cleaner(r) for r in refs], speakers=speakers)
    return ctm, stm


_SCLITE_FALLBACKS = ("/usr/lib/sctk/bin/sclite",)  # where Debian's sctk puts it (not on PATH)


def find_sclite() -> str | None:
    """Path of the sclite binary: $SIGNKD_SCLITE, then `sclite` on PATH, then Debian's place."""
    env = os.environ.get("SIGNKD_SCLITE")
    if env:
        return env
    found = shutil.which("sclite")
    if found:
        return found
    for cand in _SCLITE_FALLBACKS:
        if os.access(cand, os.X_OK):
            return cand
    return None


# e.g. "Percent Substitution      =   40.0%   (   4)" and "Ref. words   =    (  10)"
_DTL_COUNT = re.compile(
    r"^\s*(Percent Substitution|Percent Deletions|Percent Insertions|Ref\. words)\s*=.*\(\s*(\d+)\)\s*$",
    re.MULTILINE,
)


def sclite_wer(ctm: str | os.PathLike, stm: str | os.PathLike, *, sclite: str | None = None) -> WerResult:
    """Score a CTM against an STM with NIST sclite, as the Phoenix kit calls it (`-f 0`).

    Reads the counts from sclite's detailed report (`-o dtl`), so the WER is exact rather than
    rounded to sclite's one decimal. Needs the `sctk` package (Debian) or $SIGNKD_SCLITE.
    """
    exe = sclite or find_sclite()
    if exe is None:
        raise FileNotFoundError("sclite not found: install the Debian package `sctk` or set SIGNKD_SCLITE")
    cmd = [exe, "-h", os.fspath(ctm), "ctm", "-r", os.fspath(stm), "stm", "-f", "0", "-o", "dtl", "stdout"]
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"sclite failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-2000:]}")
    counts = {k: int(v) for k, v in _DTL_COUNT.findall(proc.stdout)}
    keys = ("Percent Substitution", "Percent Deletions", "Percent Insertions", "Ref. words")
    if any(k not in counts for k in keys):
        raise RuntimeError(f"could not read sclite's report:\n{proc.stdout[-2000:]}")
    return _result(*(counts[k] for k in keys))
