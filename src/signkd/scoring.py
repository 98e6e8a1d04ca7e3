"""Word error rate over gloss sequences, in percent: S, D and I kept apart, and a 95 % bootstrap
interval over utterances (`wer_interval`). Two scorers live here:

* `corpus_wer` -- plain Levenshtein WER (jiwer) over the glosses exactly as given, no clean-up.
* `official_wer` -- the number the dataset's evaluation kit reports: the kit's clean-up
  (`signkd.phoenix_kit`: for Phoenix each hypothesis gloss alone, as on its CTM line; the
  reference as the kit treats its STM), then NIST sclite's alignment (`sclite_alignment_counts`).
  It equals `sclite_wer` on the CTM/STM files `write_official_files` writes, and the real kit
  pipeline (sed/perl/awk + sclite) on the raw glosses (both checked in the tests against the
  `sclite` of the Debian package `sctk`).

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
from typing import Sequence

import jiwer
import numpy as np

from signkd.io import write_text
from signkd.phoenix_kit import CLEANERS, CleanUp, clean_phoenix_sentence, get_cleanup  # noqa: F401

EMPTY_HYPOTHESIS = "[EMPTY]"
# The kit's ground-truth STM files give each utterance one segment covering all time.
STM_SEGMENT_END = "1.79769e+308"
CTM_WORD_DURATION = 0.01
BOOTSTRAP_RESAMPLES = 1000
CI_LEVEL = 0.95


@dataclass(frozen=True)
class WerResult:
    wer: float  # percent
    substitutions: int
    deletions: int
    insertions: int
    reference_words: int
    ci_low: float  # percent: 95 % bootstrap interval over utterances (`wer_interval`)
    ci_high: float

    def as_metrics(self, prefix: str) -> dict[str, float]:
        return {
            f"{prefix}_wer": self.wer,
            f"{prefix}_sub": self.substitutions,
            f"{prefix}_del": self.deletions,
            f"{prefix}_ins": self.insertions,
            f"{prefix}_wer_ci_low": round(self.ci_low, 2),
            f"{prefix}_wer_ci_high": round(self.ci_high, 2),
        }


def wer_interval(
    per_utt_errors: Sequence[int],
    per_utt_ref_words: Sequence[int],
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    level: float = CI_LEVEL,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval (percent) of the corpus WER, resampling utterances.

    Each resample draws as many utterances as there are, with replacement, and takes its corpus
    WER = sum of errors / sum of reference words (resamples without any reference word are left
    out). The utterances are sorted by their counts first, so the interval depends only on the
    counts, not on the order the utterances come in, and the fixed seed makes it repeatable.
    """
    e = np.asarray(per_utt_errors, dtype=np.int64)
    r = np.asarray(per_utt_ref_words, dtype=np.int64)
    if e.shape != r.shape or e.ndim != 1 or e.size == 0:
        raise ValueError(f"need one error count and one reference length per utterance, got {e.shape} and {r.shape}")
    if (e < 0).any() or (r < 0).any() or r.sum() <= 0:
        raise ValueError("counts must be non-negative and the references must hold words")
    if not 0.0 < level < 1.0 or n_resamples < 1:
        raise ValueError(f"need 0 < level < 1 and n_resamples >= 1, got {level} and {n_resamples}")
    order = np.lexsort((e, r))
    e, r = e[order], r[order]
    rng = np.random.default_rng(seed)
    n, wers = e.size, []
    chunk = max(1, 2_000_000 // n)  # bounded memory for large test sets
    for start in range(0, n_resamples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_resamples - start), n))
        errs, refs = e[idx].sum(axis=1), r[idx].sum(axis=1)
        keep = refs > 0
        wers.append(100.0 * errs[keep] / refs[keep])
    values = np.concatenate(wers)
    if values.size == 0:
        raise ValueError("no bootstrap resample held a reference word")
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def _result(
    sub: int, dele: int, ins: int, errors: Sequence[int], ref_words: Sequence[int], n_resamples: int
) -> WerResult:
    n_ref = int(sum(ref_words))
    if n_ref <= 0:
        raise ValueError("cannot compute WER: the references hold no words")
    if sum(errors) != sub + dele + ins:
        raise RuntimeError(f"per-utterance errors sum to {sum(errors)}, the totals to {sub + dele + ins}")
    wer = 100.0 * (sub + dele + ins) / n_ref
    low, high = wer_interval(errors, ref_words, n_resamples)
    return WerResult(wer, sub, dele, ins, n_ref, low, high)


def corpus_wer(
    refs: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]], *, n_resamples: int = BOOTSTRAP_RESAMPLES
) -> WerResult:
    """Corpus-level WER = (S + D + I) / N over all utterances (not a mean of per-sentence WERs)."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if not refs:
        raise ValueError("cannot score an empty set of utterances")
    for i, r in enumerate(refs):
        if not r:
            raise ValueError(f"reference {i} is empty; every utterance needs at least one gloss")
    out = jiwer.process_words([" ".join(r) for r in refs], [" ".join(h) for h in hyps])
    errors = [
        sum((c.hyp_end_idx - c.hyp_start_idx) if c.type == "insert" else (c.ref_end_idx - c.ref_start_idx)
            for c in chunks if c.type != "equal")
        for chunks in out.alignments
    ]
    return _result(out.substitutions, out.deletions, out.insertions, errors, [len(r) for r in refs], n_resamples)


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
    refs: Sequence[Sequence[str]],
    hyps: Sequence[Sequence[str]],
    *,
    clean: str = "phoenix2014",
    n_resamples: int = BOOTSTRAP_RESAMPLES,
) -> WerResult:
    """Corpus WER as the dataset kit + sclite report it: S, D, I and a 95 % bootstrap interval.

    `clean` names the kit whose clean-up is applied (`signkd.phoenix_kit.CLEANERS`):
    "phoenix2014" / "phoenix2014t" -- each kit's hypothesis rules gloss by gloss, references as
    that kit treats its STM; "none" -- glosses as given; "phoenix_sentence" -- the old
    sentence-level clean-up, NOT what any kit reports. An empty (cleaned) hypothesis is scored
    as the word `[EMPTY]`, and words are aligned the way sclite aligns them
    (`sclite_alignment_counts`). References may be empty after cleaning as long as the corpus
    holds at least one reference word.
    """
    counts = utterance_counts(refs, hyps, clean=clean)
    sub, dele, ins = (sum(c[k] for c in counts) for k in range(3))
    return _result(sub, dele, ins, [sum(c[:3]) for c in counts], [c[3] for c in counts], n_resamples)


def utterance_counts(
    refs: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]], *, clean: str = "phoenix2014"
) -> list[tuple[int, int, int, int]]:
    """Per utterance (substitutions, deletions, insertions, reference words), scored exactly as
    `official_wer` scores it; what multi-seed intervals resample."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if not refs:
        raise ValueError("cannot score an empty set of utterances")
    cleanup = get_cleanup(clean)
    counts = []
    for k, (ref, hyp) in enumerate(zip(refs, hyps)):
        r, h = cleanup.reference(ref), cleanup.hypothesis(hyp) or [EMPTY_HYPOTHESIS]
        for tok in r:
            _check_token(tok, f"reference {k}")
        for tok in h:
            _check_token(tok, f"hypothesis {k}")
        _, s, d, i = sclite_alignment_counts(r, h)
        counts.append((s, d, i, len(r)))
    return counts


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
    clean: str = "phoenix2014",
    speakers: Sequence[str] | None = None,
) -> tuple[Path, Path]:
    """Write `<directory>/<split>.ctm` and `<split>.stm` as the kit hands them to sclite.

    Both sides are already through the kit's clean-up (`clean`), so sclite on these two files
    gives the same numbers as `official_wer(refs, hyps, clean=clean)`.
    """
    cleanup = get_cleanup(clean)
    directory = Path(directory)
    ctm = write_ctm(directory / f"{split}.ctm", ids, [cleanup.hypothesis(h) for h in hyps])
    stm = write_stm(directory / f"{split}.stm", ids, [cleanup.reference(r) for r in refs], speakers=speakers)
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
# one line per scored segment in the `pra` report
_PRA_SCORES = re.compile(r"^Scores: \(#C #S #D #I\) (\d+) (\d+) (\d+) (\d+)\s*$", re.MULTILINE)


def sclite_wer(
    ctm: str | os.PathLike,
    stm: str | os.PathLike,
    *,
    sclite: str | None = None,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
) -> WerResult:
    """Score a CTM against an STM with NIST sclite, as the Phoenix kits call it (`-f 0`).

    Reads the counts from sclite's detailed report (`-o dtl`), so the WER is exact rather than
    rounded to sclite's one decimal, and the per-segment scores (`-o pra`) for the bootstrap
    interval. Needs the `sctk` package (Debian) or $SIGNKD_SCLITE.
    """
    exe = sclite or find_sclite()
    if exe is None:
        raise FileNotFoundError("sclite not found: install the Debian package `sctk` or set SIGNKD_SCLITE")
    cmd = [exe, "-h", os.fspath(ctm), "ctm", "-r", os.fspath(stm), "stm", "-f", "0", "-o", "dtl", "pra", "stdout"]
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"sclite failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-2000:]}")
    counts = {k: int(v) for k, v in _DTL_COUNT.findall(proc.stdout)}
    keys = ("Percent Substitution", "Percent Deletions", "Percent Insertions", "Ref. words")
    segments = [tuple(int(x) for x in m) for m in _PRA_SCORES.findall(proc.stdout)]
    if any(k not in counts for k in keys) or not segments:
        raise RuntimeError(f"could not read sclite's report:\n{proc.stdout[-2000:]}")
    sub, dele, ins, n_ref = (counts[k] for k in keys)
    ref_words = [c + s + d for c, s, d, _ in segments]
    if sum(ref_words) != n_ref:
        raise RuntimeError(f"sclite's segments hold {sum(ref_words)} reference words, its summary {n_ref}")
    return _result(sub, dele, ins, [s + d + i for _, s, d, i in segments], ref_words, n_resamples)
