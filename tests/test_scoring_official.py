"""Official scoring: the Phoenix kit's clean-up, CTM/STM files, and agreement with NIST sclite."""

from __future__ import annotations

import re
import subprocess

import jiwer
import pytest
from tests.sclite_cases import EDGE_CASES, LETTERS, MARKERS, PREFIXED, make_cases

from signkd.scoring import (
    CLEANERS,
    EMPTY_HYPOTHESIS,
    clean_phoenix_glosses,
    corpus_wer,
    find_sclite,
    official_wer,
    sclite_alignment_counts,
    sclite_wer,
    write_ctm,
    write_official_files,
    write_stm,
)

SCLITE = find_sclite()
needs_sclite = pytest.mark.skipif(
    SCLITE is None,
    reason="sclite not found (install the Debian package `sctk`, or set SIGNKD_SCLITE); "
    "looked on PATH and in /usr/lib/sctk/bin",
)


def _clean(text: str) -> str:
    return " ".join(clean_phoenix_glosses(text.split()))


# ---- the clean-up, one rule at a time ---------------------------------------------------------


@pytest.mark.parametrize(
    "raw, cleaned",
    [
        # 1. prefixes deleted, spelling variants normalised
        ("loc-NORD cl-KOMMEN qu-WAS poss-EUCH lh-IX", "NORD KOMMEN WAS EUCH IX"),
        ("S0NNE HABEN2", "SONNE HABEN"),
        # 2. markers deleted, __ON__/__OFF__ kept
        ("__ON__ REGEN __EMOTION__ SONNE __PU__ WOLKE __LEFTHAND__ __OFF__", "__ON__ REGEN SONNE WOLKE __OFF__"),
        # 3. compounds
        ("JETZT WIE AUSSEHEN WETTER", "JETZT WIE-AUSSEHEN WETTER"),
        ("ZEIGEN WETTER", "ZEIGEN-BILDSCHIRM WETTER"),
        ("WETTER ZEIGEN", "WETTER ZEIGEN-BILDSCHIRM"),
        ("ZEIGEN-BILDSCHIRM", "ZEIGEN-BILDSCHIRM"),
        # 4.-9. spelled letters
        ("A B C REGEN", "A B+C REGEN"),  # the kit's quirk: rule 5 re-splits rule 4's A+B
        ("A B C", "A+B+C"),
        ("IX S H IX", "IX S+H IX"),  # inside
        ("BIS E R Z BERG", "BIS E+R+Z BERG"),  # a chain of three
        ("REGEN A B", "REGEN A+B"),  # at the end
        ("X A B C Y", "X A+B+C+Y"),  # X and Y are letters too
        ("REGEN SCH A WOLKE", "REGEN SCH+A WOLKE"),  # SCH as a letter
        ("REGEN NN A WOLKE", "REGEN NN+A WOLKE"),
        ("REGEN A NN WOLKE", "REGEN A+NN WOLKE"),
        ("P BIS L", "P BIS L"),  # a word between letters
        ("A B", "A B"),  # the kit's patterns miss a two-letter sentence
        ("REGEN A __PU__ B WOLKE", "REGEN A B WOLKE"),  # a deleted marker leaves two spaces
        ("S+H", "S+H"),
        # 10.-11. suffixes
        ("WETTERRAUM", "WETTER"),
        ("RAUM", "RAUM"),
        ("REGEN-PLUSPLUS", "REGEN"),
        # 12. repeats of plain glosses collapse (four passes)
        ("REGEN REGEN SONNE SONNE SONNE", "REGEN SONNE"),
        (" ".join(["REGEN"] * 16), "REGEN"),
        (" ".join(["REGEN"] * 17), "REGEN REGEN"),
        ("NICHT-VIEL NICHT-VIEL", "NICHT-VIEL NICHT-VIEL"),
        ("__ON__ __ON__", "__ON__ __ON__"),
        ("HABEN2 HABEN", "HABEN"),  # after rule 1 they are equal
        # 13. leftovers dropped
        ("REGEN __EPENTHESIS__ SONNE", "REGEN SONNE"),
        # empties
        ("__PU__ __EMOTION__", ""),
        ("", ""),
    ],
)
def test_phoenix_cleanup_rules(raw, cleaned):
    assert _clean(raw) == cleaned


def test_rule_order_matters():
    # -PLUSPLUS goes (rule 11) before repeats collapse (rule 12) ...
    assert _clean("REGEN-PLUSPLUS REGEN") == "REGEN"
    # ... and letters are joined (rules 4-9) before that, so repeated letters join, not collapse
    assert _clean("REGEN A A WOLKE") == "REGEN A+A WOLKE"


def test_cleanup_is_idempotent_on_kit_style_references():
    for ref in ("__ON__ JETZT WETTER WIE-AUSSEHEN MORGEN __OFF__", "IX S+H IX REGEN", "P BIS L"):
        assert _clean(ref) == ref


# ---- sclite's alignment ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref, hyp, counts",
    [
        ("A B C", "A B C", (3, 0, 0, 0)),
        ("A B C", "", (0, 0, 3, 0)),
        ("", "A B", (0, 0, 0, 2)),
        ("NORD SUED", "nord sued", (2, 0, 0, 0)),  # ASCII case ignored
        ("ÄPFEL", "äpfel", (0, 1, 0, 0)),  # non-ASCII case not
        ("B C C", "C A A", (1, 1, 1, 1)),  # sclite's weights, not the minimum edit count
        ("C D", "D B", (1, 0, 1, 1)),
        ("A B X", "X D E", (0, 3, 0, 0)),
    ],
)
def test_sclite_alignment_counts(ref, hyp, counts):
    assert sclite_alignment_counts(ref.split(), hyp.split()) == counts


def test_sclite_alignment_can_differ_from_levenshtein():
    # same total, different split
    out = jiwer.process_words("B C C", "C A A")
    assert (out.substitutions, out.deletions, out.insertions) == (3, 0, 0)
    assert sclite_alignment_counts("B C C".split(), "C A A".split()) == (1, 1, 1, 1)
    # one error more than the minimum (checked against sclite 2.4.10)
    out = jiwer.process_words("A A A C B", "C D B C")
    assert out.substitutions + out.deletions + out.insertions == 4
    assert sclite_alignment_counts("A A A C B".split(), "C D B C".split()) == (2, 0, 3, 2)


# ---- official_wer ----------------------------------------------------------------------------


def test_empty_hypothesis_counts_as_one_substitution_and_deletions():
    r = official_wer([["REGEN", "SONNE", "WOLKE"]], [[]])
    assert (r.substitutions, r.deletions, r.insertions, r.reference_words) == (1, 2, 0, 3)
    assert r.wer == pytest.approx(100.0)
    assert EMPTY_HYPOTHESIS == "[EMPTY]"


def test_official_wer_cleans_both_sides():
    refs = [["__ON__", "loc-NORD", "REGEN", "__PU__"], ["IX", "S+H"]]
    hyps = [["__ON__", "NORD", "REGEN", "REGEN"], ["IX", "S", "H"]]
    assert official_wer(refs, hyps).wer == 0.0
    raw = official_wer(refs, hyps, clean="none")
    assert raw.reference_words == 6 and raw.wer > 0


def test_official_wer_empty_reference_after_cleaning_counts_insertions():
    r = official_wer([["__PU__"], ["REGEN"]], [["SONNE"], ["REGEN"]])
    assert (r.substitutions, r.deletions, r.insertions, r.reference_words) == (0, 0, 1, 1)
    with pytest.raises(ValueError, match="no words"):
        official_wer([["__PU__"]], [["REGEN"]])


def test_official_wer_input_errors():
    with pytest.raises(ValueError, match="hypotheses"):
        official_wer([["A"]], [])
    with pytest.raises(ValueError, match="empty set"):
        official_wer([], [])
    with pytest.raises(ValueError, match="unknown clean-up"):
        official_wer([["A"]], [["A"]], clean="phoenix2014t")
    with pytest.raises(ValueError, match="special meaning"):
        official_wer([["REGEN"]], [["@"]])
    with pytest.raises(ValueError, match="special meaning"):
        official_wer([["(REGEN)"]], [["REGEN"]])


def test_corpus_wer_is_still_the_uncleaned_levenshtein_wer():
    refs, hyps = [["loc-NORD", "REGEN"]], [["NORD", "REGEN"]]
    assert corpus_wer(refs, hyps).substitutions == 1
    assert official_wer(refs, hyps).wer == 0.0


# ---- CTM / STM writers -----------------------------------------------------------------------


def test_ctm_and_stm_format(tmp_path):
    ids = ["u-2", "u-10", "u-1"]
    ctm = write_ctm(tmp_path / "h.ctm", ids, [["A", "B"], [], ["C"]])
    stm = write_stm(tmp_path / "r.stm", ids, [["A"], ["B", "C"], ["C"]], speakers=["s1", "s2", "s1"])
    assert ctm.read_text() == (
        "u-1 1 0.000 0.010 C\n"
        "u-10 1 0.000 0.010 [EMPTY]\n"
        "u-2 1 0.000 0.010 A\n"
        "u-2 1 0.010 0.010 B\n"
    )
    assert stm.read_text() == (
        "u-1 1 s1 0.0 1.79769e+308 C\n"
        "u-10 1 s2 0.0 1.79769e+308 B C\n"
        "u-2 1 s1 0.0 1.79769e+308 A\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.ctm", "r.stm"]  # no temp files left


def test_writers_reject_bad_input(tmp_path):
    with pytest.raises(ValueError, match="twice"):
        write_ctm(tmp_path / "h.ctm", ["a", "a"], [["A"], ["B"]])
    with pytest.raises(ValueError, match="twice"):  # sclite lower-cases ids
        write_stm(tmp_path / "r.stm", ["Utt-1", "utt-1"], [["A"], ["B"]])
    with pytest.raises(ValueError, match="whitespace"):
        write_stm(tmp_path / "r.stm", ["a b"], [["A"]])
    with pytest.raises(ValueError, match="whitespace"):
        write_ctm(tmp_path / "h.ctm", ["a"], [["A B"]])
    with pytest.raises(ValueError, match="special meaning"):
        write_stm(tmp_path / "r.stm", ["a"], [["<unk>", "A"]])
    with pytest.raises(ValueError, match="ids"):
        write_ctm(tmp_path / "h.ctm", ["a"], [["A"], ["B"]])
    assert not any(tmp_path.iterdir())


# ---- agreement with the real sclite ----------------------------------------------------------


def test_generated_cases_cover_the_edge_cases():
    cases = make_cases()
    assert len(cases.ids) >= 200
    hyp_words = [w for h in cases.hyps for w in h]
    ref_words = [w for r in cases.refs for w in r]
    assert sum(not clean_phoenix_glosses(h) for h in cases.hyps) >= 10  # empty after clean-up
    assert any(a == b for h in cases.hyps for a, b in zip(h, h[1:]))  # immediate repeats
    for vocab in (PREFIXED, MARKERS):
        assert set(vocab) <= set(hyp_words + ref_words)
    assert sum(w in LETTERS for w in ref_words) >= 50  # spelled letters
    assert any("+" in w for r in cases.refs for w in clean_phoenix_glosses(r))


def _sclite_per_utterance(ctm, stm) -> dict[str, tuple[int, int, int, int]]:
    out = subprocess.run(
        [SCLITE, "-h", str(ctm), "ctm", "-r", str(stm), "stm", "-f", "0", "-o", "pra", "stdout"],
        capture_output=True, text=True, errors="replace", check=True,
    ).stdout
    found = re.findall(r"^File: (\S+)\n.*?^Scores: \(#C #S #D #I\) (\d+) (\d+) (\d+) (\d+)", out, re.M | re.S)
    return {u: tuple(int(x) for x in xs) for u, *xs in found}  # keyed by lower-cased id


@needs_sclite
@pytest.mark.parametrize("clean", ["phoenix", "none"])
def test_official_wer_equals_sclite(tmp_path, clean):
    cases = make_cases()
    ctm, stm = write_official_files(tmp_path, "test", cases.ids, cases.refs, cases.hyps,
                                    clean=clean, speakers=cases.speakers)
    ours = official_wer(cases.refs, cases.hyps, clean=clean)
    theirs = sclite_wer(ctm, stm)
    assert abs(ours.wer - theirs.wer) <= 0.01
    assert (ours.substitutions, ours.deletions, ours.insertions, ours.reference_words) == (
        theirs.substitutions, theirs.deletions, theirs.insertions, theirs.reference_words)

    # and utterance by utterance, so a failure names the case
    per_utt = _sclite_per_utterance(ctm, stm)
    assert len(per_utt) == len(cases.ids)
    cleaner = CLEANERS[clean]
    for u, ref, hyp in zip(cases.ids, cases.refs, cases.hyps):
        mine = sclite_alignment_counts(cleaner(ref), cleaner(hyp) or [EMPTY_HYPOTHESIS])
        assert mine == per_utt[u.lower()], (u, ref, hyp)  # sclite lower-cases file ids


@needs_sclite
def test_sclite_wer_on_the_edge_cases_alone(tmp_path):
    refs = [r.split() for r, _ in EDGE_CASES]
    hyps = [h.split() for _, h in EDGE_CASES]
    ids = [f"edge-{k:03d}" for k in range(len(refs))]
    ctm, stm = write_official_files(tmp_path, "edge", ids, refs, hyps)
    ours, theirs = official_wer(refs, hyps), sclite_wer(ctm, stm)
    assert ours == theirs
