"""The Phoenix evaluation kits' clean-up, rule by rule, applied the way each kit really applies it.

Both kits pipe the hypothesis CTM -- one gloss per line, `<id> 1 <start> <dur> <gloss>` -- through
sed/perl/grep/awk and score the result with NIST sclite against a ground-truth STM. A rule
therefore only ever sees one gloss: the rules written for neighbouring glosses (joining spelled
letters, `WIE AUSSEHEN`, collapsing repeats) never fire on a hypothesis. To get the kit's number we
run each kit's rules, in its order, on a one-gloss CTM line (`_CTM_HEAD` + gloss; the head holds
digits and dots only, so no rule can match in or across it), then drop what the kit drops.

* "phoenix2014" (`evaluatePhoenix2014.sh`): hypothesis per line through `_RULES_2014` (prefixes
  `loc-` `cl-` `qu-` `poss-` `lh-` deleted anywhere; `S0NNE`, `HABEN2` respelt; `__EMOTION__`,
  `__PU__`, `__LEFTHAND__` deleted; `ZEIGEN` at the end -> `ZEIGEN-BILDSCHIRM`; `..RAUM` after
  two capitals and `-PLUSPLUS` dropped), then lines still holding `__LEFTHAND__`,
  `__EPENTHESIS__` or `__EMOTION__` and emptied lines removed. The reference STM is used as
  given (the kit only sorts it).
* "phoenix2014t" (`evaluatePHOENIX-2014-T-signrecognition.sh`): other, fewer hypothesis rules --
  lines holding `__LEFTHAND__`/`__EPENTHESIS__`/`__EMOTION__` or ending in a `__X__` gloss
  (`__ON__`, `__OFF__`, `__PU__`, ...) removed; `loc-`/`cl-` stripped only at the start of a
  gloss, `-PLUSPLUS` and `RAUM` after one or more capitals only at its end; `qu-`, `poss-`,
  `lh-`, `S0NNE`, `HABEN2`, `ZEIGEN` untouched -- then an awk pass drops a line whose gloss
  equals the previous line's (same utterance), so repeats DO collapse, for every kind of gloss.
  Its STM holds the raw corpus glosses and the kit cleans it, line by line, with sentence-level
  rules (`_RULES_2014T_REF`); we do the same to the references.
* "phoenix_sentence" -- NOT official: the Phoenix-2014 rules applied to whole sentences, on
  references and hypotheses alike (what this project reported before). Multi-gloss rules fire,
  so it scores lower than the Phoenix-2014 kit; kept only for comparison.

An utterance left without glosses is scored as `[EMPTY]` (the kit's awk and `mergectmstm.py`).

Verified against these files (read in full):
  Phoenix-2014 kit -- VIPL-SLP/VAC_CSLR @99254ee: evaluation/slr_eval/preprocess.sh (the kit's
  hypothesis clean-up split out of evaluatePhoenix2014.sh), evaluation/slr_eval/mergectmstm.py,
  evaluation/slr_eval/wer_calculation.py (the chain: preprocess -> sorted STM as given -> merge
  -> sclite -f 0); 2000ZRL/LCSA_C2SLR_SRM @0b2e996: evaluation_relaxation/phoenix_eval.sh (the
  whole evaluatePhoenix2014.sh with a work-folder prefix: same rules, STM only sorted).
  Phoenix-2014T kit -- 2000ZRL/LCSA_C2SLR_SRM @0b2e996: evaluation_relaxation/phoenix_T_eval.sh
  (evaluatePHOENIX-2014-T-signrecognition.sh with a work-folder prefix; an unprefixed copy in
  the search index, repository not named there, has the same rules), mergectmstm_T.py, and
  PHOENIX-2014-T-groundtruth-dev.stm (raw glosses: `poss-EUCH`, `neg-FROST`, `C+M`).
  Note: hulianyuyy/CorrNet's evaluation/slr_eval holds its own Phoenix-2014T STMs (raw corpus
  glosses) beside the Phoenix-2014 tooling, not the 2014T kit's script, and defaults to a Python
  evaluator; 2014T numbers from such set-ups need not be the 2014T kit's.

Regex semantics are the kits' in the C locale: ASCII classes (`re.ASCII`), sed's `$` is `\\Z`.
awk compares two glosses that both look like decimal numbers numerically (`1` == `01`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

Rule = tuple[re.Pattern[str], str]


def _rules(*pairs: tuple[str, str]) -> tuple[Rule, ...]:
    return tuple((re.compile(p, re.ASCII), r) for p, r in pairs)


def _apply(text: str, rules: Sequence[Rule]) -> str:
    for pattern, repl in rules:
        text = pattern.sub(repl, text)
    return text


# Spelled letters joined with `+`, shared word for word by both kits. A letter pair needs single
# spaces around it, so a gloss deleted earlier (two spaces left) blocks the join.
_LETTER_JOINS = (
    (r"^([A-Z]) ([A-Z][+ ])", r"\1+\2"),  # line opens with two letters (a kit line opens with its id)
    (r"[ +]([A-Z]) ([A-Z]) ", r" \1+\2 "),  # two letters inside
    *[(r"([ +][A-Z]) ([A-Z][ +])", r"\1+\2")] * 3,  # grow a chain; three passes, as the kits do
    (r"([ +]SCH) ([A-Z][ +])", r"\1+\2"),  # SCH and NN count as letters
    (r"([ +]NN) ([A-Z][ +])", r"\1+\2"),
    (r"([ +][A-Z]) (NN[ +])", r"\1+\2"),
    (r"([ +][A-Z]) ([A-Z])\Z", r"\1+\2"),  # two letters closing the line
)
# An immediate repeat of a plain A-Z gloss (not `NICHT-VIEL`, `S+H`, `__ON__`) collapses; the kits
# run this perl substitution four times, so up to 16 equal glosses become one.
_REPEATS = [(r"(?<![\w-])(\b[A-Z]+(?![\w-])) \1(?![\w-])", r"\1")] * 4

_RULES_2014 = _rules(
    ("loc-", ""), ("cl-", ""), ("qu-", ""), ("poss-", ""), ("lh-", ""),  # prefixes, anywhere
    ("S0NNE", "SONNE"), ("HABEN2", "HABEN"),  # spelling variants
    ("__EMOTION__", ""), ("__PU__", ""), ("__LEFTHAND__", ""),  # markers: text deleted, line kept
    ("WIE AUSSEHEN", "WIE-AUSSEHEN"),  # [several glosses]
    ("ZEIGEN ", "ZEIGEN-BILDSCHIRM "), (r"ZEIGEN\Z", "ZEIGEN-BILDSCHIRM"),  # "show" = on screen
    *_LETTER_JOINS,  # [several glosses]
    (r"([A-Z][A-Z])RAUM", r"\1"),  # WETTERRAUM -> WETTER (needs two capitals before RAUM)
    ("-PLUSPLUS", ""),  # repetition marker, anywhere
    *_REPEATS,  # [several glosses]
)
_DROP_2014 = ("__LEFTHAND__", "__EPENTHESIS__", "__EMOTION__")  # grep -v after the rules

_DROP_2014T = ("__LEFTHAND__", "__EPENTHESIS__", "__EMOTION__")  # grep -v before the rules
_MARKER_LINE_2014T = re.compile(r" __[^_ ]*__\Z", re.ASCII)  # grep -v: line ends in a __X__ gloss
_RULES_2014T_HYP = _rules(
    (r" loc-([^ ]*)\Z", r" \1"),  # loc- only at the start of the (last) gloss
    (r"-PLUSPLUS\Z", ""),
    (r" cl-([^ ]*)\Z", r" \1"),
    (r"\b([A-Z][A-Z]*)RAUM\Z", r"\1"),  # NORDRAUM -> NORD, XRAUM -> X
    (r"\s*\Z", ""),
)
_RULES_2014T_REF = _rules(
    ("__LEFTHAND__ ", ""), (" __LEFTHAND__", ""), (" __EPENTHESIS__", ""), ("__EPENTHESIS__ ", ""),
    (" __EMOTION__", ""), ("__EMOTION__ ", ""),
    (r"\b__[^_ ]*__\b", ""),  # every other __X__ gloss; leaves two spaces behind
    (r"\bloc-([^ ]*)\b", r"\1"), (r"\bcl-([^ ]*)\b", r"\1"),
    (r"\b([^ ]*)-PLUSPLUS\b", r"\1"), (r"\b([A-Z][A-Z]*)RAUM\b", r"\1"),
    ("WIE AUSSEHEN", "WIE-AUSSEHEN"),
    *_LETTER_JOINS,
    *_REPEATS,
)

# Stand-ins for the fields before the glosses (`<id> 1 <start> <dur>`, `<id> 1 <spk> 0.0 <end>`):
# digits and dots only, so no rule matches in or across them, as with the kits' real ids and times.
_CTM_HEAD = "0 1 0.000 0.010 "
_STM_HEAD = "0 1 0 0.0 1.79769e+308 "
_AWK_NUMBER = re.compile(r"[ \t\n]*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?[ \t\n]*", re.ASCII)


def _ctm_words(line: str) -> list[str]:
    """What is left of a CTM line's gloss field after `\\s*$` is stripped (awk's `$5`)."""
    return line.split()[4:]


def kit2014_hypothesis(glosses: Sequence[str]) -> list[str]:
    """Phoenix-2014 kit on a hypothesis: every gloss alone on its CTM line through the rules."""
    out: list[str] = []
    for gloss in glosses:
        line = _apply(_CTM_HEAD + gloss, _RULES_2014)
        if not any(m in line for m in _DROP_2014):
            out.extend(_ctm_words(line))
    return out


def _awk_equal(a: str, b: str) -> bool:
    if _AWK_NUMBER.fullmatch(a) and _AWK_NUMBER.fullmatch(b):
        return float(a) == float(b)
    return a == b


def kit2014t_hypothesis(glosses: Sequence[str]) -> list[str]:
    """Phoenix-2014T kit on a hypothesis: per-line grep/sed, then consecutive equal glosses merge."""
    words: list[str] = []
    for gloss in glosses:
        line = _CTM_HEAD + gloss
        if any(m in line for m in _DROP_2014T) or _MARKER_LINE_2014T.search(line):
            continue
        words.extend(_ctm_words(_apply(line, _RULES_2014T_HYP)))
    out: list[str] = []
    previous: str | None = None  # awk compares with the previous line, kept or not
    for w in words:
        if previous is None or not _awk_equal(previous, w):
            out.append(w)
        previous = w
    return out


def kit2014t_reference(glosses: Sequence[str]) -> list[str]:
    """Phoenix-2014T kit on a reference: its sentence rules over the whole STM line."""
    return _apply(_STM_HEAD + " ".join(glosses), _RULES_2014T_REF).split()[5:]


def clean_phoenix_sentence(glosses: Sequence[str]) -> list[str]:
    """NOT the kit: the Phoenix-2014 rules over the space-joined sentence, so multi-gloss rules
    fire; glosses still holding a dropped marker are removed one by one."""
    text = _apply(" ".join(glosses), _RULES_2014)
    return [g for g in text.split() if not any(m in g for m in _DROP_2014)]


def as_given(glosses: Sequence[str]) -> list[str]:
    return list(glosses)


@dataclass(frozen=True)
class CleanUp:
    """How one scorer treats each side: hypotheses and references may be cleaned differently."""

    hypothesis: Callable[[Sequence[str]], list[str]]
    reference: Callable[[Sequence[str]], list[str]]


_KIT_2014 = CleanUp(kit2014_hypothesis, as_given)
CLEANERS: dict[str, CleanUp] = {
    "phoenix2014": _KIT_2014,
    "phoenix2014t": CleanUp(kit2014t_hypothesis, kit2014t_reference),
    "phoenix": _KIT_2014,  # the name used before the two kits were told apart
    "phoenix_sentence": CleanUp(clean_phoenix_sentence, clean_phoenix_sentence),
    "none": CleanUp(as_given, as_given),
}


def get_cleanup(clean: str) -> CleanUp:
    try:
        return CLEANERS[clean]
    except KeyError:
        raise ValueError(f"unknown clean-up {clean!r}; choose one of {sorted(CLEANERS)}") from None
