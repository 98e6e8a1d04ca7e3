"""Official scoring: each Phoenix kit's clean-up, CTM/STM files, and agreement with the real kit
pipeline (sed/perl/grep/awk) + NIST sclite."""

from __future__ import annotations

import re
import subprocess

import jiwer
import pytest

from signkd.scoring import (
    CLEANERS,
    EMPTY_HYPOTHESIS,
    clean_phoenix_sentence,
    corpus_wer,
    find_sclite,
    official_wer,
    sclite_alignment_counts,
    sclite_wer,
    write_ctm,
    write_official_files,
    write_stm,
)
from tests.sclite_cases import (
    EDGE_CASES,
    LETTERS,
    MARKERS,
    PREFIXED,
    glosses_by_id,
    make_cases,
    missing_kit_tools,
    run_kit,
)

SCLITE = find_sclite()
needs_sclite = pytest.mark.skipif(
    SCLITE is None,
    reason="sclite not found (install the Debian package `sctk`, or set SIGNKD_SCLITE); "
    "looked on PATH and in /usr/lib/sctk/bin",
)
KITS = ("phoenix2014", "phoenix2014t")
needs_kit_tools = pytest.mark.skipif(missing_kit_tools() is not None, reason=str(missing_kit_tools()))


def _hyp(kit: str, text: str) -> str:
    return " ".join(CLEANERS[kit].hypothesis(text.split()))


def _ref(kit: str, text: str) -> str:
    return " ".join(CLEANERS[kit].reference(text.split()))


# ---- the kits' clean-up, gloss by gloss --------------------------------------------------------


@pytest.mark.parametrize(
    "raw, kit2014, kit2014t",
    [
        ("loc-NORD cl-KOMMEN", "NORD KOMMEN", "NORD KOMMEN"),
        ("qu-WAS poss-EUCH lh-IX neg-FROST", "WAS EUCH IX neg-FROST", "qu-WAS poss-EUCH lh-IX neg-FROST"),
        ("S0NNE HABEN2", "SONNE HABEN", "S0NNE HABEN2"),
        ("__ON__ REGEN __PU__ __EMOTION__ __LEFTHAND__ __EPENTHESIS__ __OFF__", "__ON__ REGEN __OFF__", "REGEN"),
        ("ZEIGEN WETTER", "ZEIGEN-BILDSCHIRM WETTER", "ZEIGEN WETTER"),  # each ZEIGEN ends its line
        ("WETTERRAUM XRAUM RAUM", "WETTER XRAUM RAUM", "WETTER X RAUM"),
        ("REGEN-PLUSPLUS cl-REGEN-PLUSPLUS", "REGEN REGEN", "REGEN"),
        # rules that need several glosses never fire on a hypothesis ...
        ("A B C", "A B C", "A B C"),
        ("IX S H IX", "IX S H IX", "IX S H IX"),
        ("WIE AUSSEHEN", "WIE AUSSEHEN", "WIE AUSSEHEN"),
        # ... except 2014T's awk, which merges equal neighbouring lines of any gloss
        ("REGEN REGEN SONNE", "REGEN REGEN SONNE", "REGEN SONNE"),
        ("NICHT-VIEL __PU__ NICHT-VIEL", "NICHT-VIEL NICHT-VIEL", "NICHT-VIEL"),
        ("1 01 1.0", "1 01 1.0", "1"),  # awk compares numbers as numbers
        ("regen REGEN", "regen REGEN", "regen REGEN"),  # ... and words case-sensitively
        # rule order
        ("loc-ZEIGEN ZEIGEN__PU__", "ZEIGEN-BILDSCHIRM ZEIGEN-BILDSCHIRM", "ZEIGEN ZEIGEN__PU__"),
        ("loc-__PU__", "", "__PU__"),
        ("__PU__ __EMOTION__", "", ""),
        ("", "", ""),
    ],
)
def test_kit_hypothesis_rules_one_gloss_at_a_time(raw, kit2014, kit2014t):
    assert _hyp("phoenix2014", raw) == kit2014
    assert _hyp("phoenix2014t", raw) == kit2014t


@pytest.mark.parametrize(
    "raw, cleaned",
    [
        ("__ON__ REGEN __OFF__", "REGEN"),
        ("loc-NORD cl-KOMMEN poss-EUCH", "NORD KOMMEN poss-EUCH"),
        ("WIE AUSSEHEN ZEIGEN", "WIE-AUSSEHEN ZEIGEN"),
        ("A B C REGEN", "A+B+C REGEN"),  # the STM line's id comes first, so rule 5 starts the chain
        ("A B", "A+B"),
        ("A __PU__ B", "A B"),  # the removed marker leaves two spaces: no join ...
        ("REGEN __PU__ REGEN", "REGEN REGEN"),  # ... and no collapse
        ("REGEN REGEN SONNE", "REGEN SONNE"),
        ("NORDRAUM REGEN-PLUSPLUS", "NORD REGEN"),
        ("REGEN __EMOTION__ SONNE __LEFTHAND__", "REGEN SONNE"),
    ],
)
def test_kit2014t_cleans_its_reference_as_a_sentence(raw, cleaned):
    assert _ref("phoenix2014t", raw) == cleaned


def test_kit2014_uses_its_reference_as_given():
    raw = "__ON__ loc-NORD A B REGEN REGEN __PU__ __OFF__"
    assert _ref("phoenix2014", raw) == raw


@pytest.mark.parametrize(
    "raw, cleaned",
    [
        ("A B C REGEN", "A B+C REGEN"),  # without an id in front, rule 4 fires first
        ("A B C", "A+B+C"),
        ("BIS E R Z BERG", "BIS E+R+Z BERG"),
        ("REGEN SCH A NN P WOLKE", "REGEN SCH+A+NN+P WOLKE"),
        ("REGEN A __PU__ B WOLKE", "REGEN A B WOLKE"),
        ("JETZT WIE AUSSEHEN", "JETZT WIE-AUSSEHEN"),
        ("REGEN REGEN SONNE SONNE SONNE", "REGEN SONNE"),
        (" ".join(["REGEN"] * 17), "REGEN REGEN"),  # four passes: 16 -> 1, 17 -> 2
        ("NICHT-VIEL NICHT-VIEL __ON__ __ON__", "NICHT-VIEL NICHT-VIEL __ON__ __ON__"),
        ("REGEN A A WOLKE", "REGEN A+A WOLKE"),  # letters join before repeats collapse
    ],
)
def test_sentence_cleanup_fires_the_multi_gloss_rules(raw, cleaned):
    assert " ".join(clean_phoenix_sentence(raw.split())) == cleaned
    assert CLEANERS["phoenix_sentence"].reference is clean_phoenix_sentence


def test_cleanup_names():
    assert CLEANERS["phoenix"] is CLEANERS["phoenix2014"]  # the name used before
    with pytest.raises(ValueError, match="unknown clean-up"):
        official_wer([["A"]], [["A"]], clean="phoenix2015")


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
    out = jiwer.process_words("B C C", "C A A")  # same total, different split
    assert (out.substitutions, out.deletions, out.insertions) == (3, 0, 0)
    assert sclite_alignment_counts("B C C".split(), "C A A".split()) == (1, 1, 1, 1)
    out = jiwer.process_words("A A A C B", "C D B C")  # one error more than the minimum
    assert out.substitutions + out.deletions + out.insertions == 4
    assert sclite_alignment_counts("A A A C B".split(), "C D B C".split()) == (2, 0, 3, 2)


# ---- official_wer ----------------------------------------------------------------------------


def test_empty_hypothesis_counts_as_one_substitution_and_deletions():
    r = official_wer([["REGEN", "SONNE", "WOLKE"]], [[]])
    assert (r.substitutions, r.deletions, r.insertions, r.reference_words) == (1, 2, 0, 3)
    assert r.wer == pytest.approx(100.0) and (r.ci_low, r.ci_high) == (100.0, 100.0)
    assert EMPTY_HYPOTHESIS == "[EMPTY]"


def test_official_wer_cleans_per_kit():
    refs = [["__ON__", "NORD", "REGEN", "__OFF__"], ["IX", "S+H"]]
    hyps = [["__ON__", "loc-NORD", "REGEN", "REGEN", "__OFF__"], ["IX", "S", "H"]]
    r = official_wer(refs, hyps, clean="phoenix2014")  # repeat kept, letters not joined
    assert (r.substitutions, r.deletions, r.insertions, r.reference_words) == (1, 0, 2, 6)
    r = official_wer(refs, hyps, clean="phoenix2014t")  # repeat merged, __ON__ gone on both sides
    assert (r.substitutions, r.deletions, r.insertions, r.reference_words) == (1, 0, 1, 4)
    assert official_wer(refs, hyps, clean="phoenix_sentence").wer == 0.0  # the old, too kind number


def test_official_wer_empty_reference_after_cleaning_counts_insertions():
    r = official_wer([["__PU__"], ["REGEN"]], [["SONNE"], ["REGEN"]], clean="phoenix2014t")
    assert (r.substitutions, r.deletions, r.insertions, r.reference_words) == (0, 0, 1, 1)
    with pytest.raises(ValueError, match="no words"):
        official_wer([["__PU__"]], [["REGEN"]], clean="phoenix2014t")


def test_official_wer_input_errors():
    with pytest.raises(ValueError, match="hypotheses"):
        official_wer([["A"]], [])
    with pytest.raises(ValueError, match="empty set"):
        official_wer([], [])
    with pytest.raises(ValueError, match="special meaning"):
        official_wer([["REGEN"]], [["@"]])
    with pytest.raises(ValueError, match="special meaning"):
        official_wer([["(REGEN)"]], [["REGEN"]])


def test_corpus_wer_is_still_the_uncleaned_levenshtein_wer():
    refs, hyps = [["NORD", "REGEN"]], [["loc-NORD", "REGEN"]]
    assert corpus_wer(refs, hyps).substitutions == 1
    assert official_wer(refs, hyps).wer == 0.0


# ---- CTM / STM writers -----------------------------------------------------------------------


def test_ctm_and_stm_format(tmp_path):
    ids = ["u-2", "u-10", "u-1"]
    ctm = write_ctm(tmp_path / "h.ctm", ids, [["A", "B"], [], ["C"]])
    stm = write_stm(tmp_path / "r.stm", ids, [["A"], ["B", "C"], ["C"]], speakers=["s1", "s2", "s1"])
    assert ctm.read_text() == (
        "u-1 1 0.000 0.010 C\nu-10 1 0.000 0.010 [EMPTY]\nu-2 1 0.000 0.010 A\nu-2 1 0.010 0.010 B\n"
    )
    assert stm.read_text() == (
        "u-1 1 s1 0.0 1.79769e+308 C\nu-10 1 s2 0.0 1.79769e+308 B C\nu-2 1 s1 0.0 1.79769e+308 A\n"
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


# ---- agreement with the real kit pipeline and sclite -------------------------------------------


def test_generated_cases_cover_the_edge_cases():
    cases = make_cases()
    assert len(cases.ids) >= 250
    words = [w for u in cases.hyps + cases.refs for w in u]
    assert sum(not h for h in cases.hyps) >= 10  # empty raw hypotheses
    assert sum(not CLEANERS["phoenix2014"].hypothesis(h) for h in cases.hyps) >= 15
    assert sum(any(a == b for a, b in zip(h, h[1:])) for h in cases.hyps) >= 40  # repeats
    assert set(PREFIXED + MARKERS) <= set(words)
    assert sum(w in LETTERS for w in words) >= 100  # spelled letters
    assert sum(any("+" in w for w in CLEANERS["phoenix2014t"].reference(r)) for r in cases.refs) >= 10


def _sclite_per_utterance(ctm, stm) -> dict[str, tuple[int, ...]]:
    out = subprocess.run(
        [SCLITE, "-h", str(ctm), "ctm", "-r", str(stm), "stm", "-f", "0", "-o", "pra", "stdout"],
        capture_output=True, text=True, errors="replace", check=True,
    ).stdout
    found = re.findall(r"^File: (\S+)\n.*?^Scores: \(#C #S #D #I\) (\d+) (\d+) (\d+) (\d+)", out, re.M | re.S)
    return {u: tuple(int(x) for x in xs) for u, *xs in found}  # keyed by lower-cased id


@needs_sclite
@needs_kit_tools
@pytest.mark.parametrize("kit", KITS)
def test_official_wer_equals_the_kit_pipeline_and_sclite(tmp_path, kit):
    """Raw glosses -> the kit's own sed/perl/grep/awk over a one-gloss-a-line CTM -> sclite."""
    cases = make_cases()
    ctm, stm = run_kit(kit, tmp_path, cases)
    kit_hyps, kit_refs = glosses_by_id(ctm, 4), glosses_by_id(stm, 5)
    cleanup = CLEANERS[kit]
    for u, ref, hyp in zip(cases.ids, cases.refs, cases.hyps):  # the clean-up itself, case by case
        assert (cleanup.hypothesis(hyp) or [EMPTY_HYPOTHESIS]) == kit_hyps[u], (u, hyp)
        assert cleanup.reference(ref) == kit_refs.get(u, []), (u, ref)

    ours, theirs = official_wer(cases.refs, cases.hyps, clean=kit), sclite_wer(ctm, stm)
    assert (ours.substitutions, ours.deletions, ours.insertions, ours.reference_words) == (
        theirs.substitutions, theirs.deletions, theirs.insertions, theirs.reference_words)
    assert ours == theirs  # WER and bootstrap interval too
    per_utt = _sclite_per_utterance(ctm, stm)
    assert len(per_utt) == len(cases.ids)
    for u, ref, hyp in zip(cases.ids, cases.refs, cases.hyps):
        mine = sclite_alignment_counts(cleanup.reference(ref), cleanup.hypothesis(hyp) or [EMPTY_HYPOTHESIS])
        assert mine == per_utt[u.lower()], (u, ref, hyp)

    # the sentence-level clean-up this replaced does not give the kit's counts
    old = official_wer(cases.refs, cases.hyps, clean="phoenix_sentence")
    counts = (theirs.substitutions, theirs.deletions, theirs.insertions)
    assert (old.substitutions, old.deletions, old.insertions) != counts


@needs_sclite
@pytest.mark.parametrize("clean", [*KITS, "phoenix_sentence", "none"])
def test_written_official_files_score_the_same_in_sclite(tmp_path, clean):
    cases = make_cases()
    ctm, stm = write_official_files(tmp_path, "test", cases.ids, cases.refs, cases.hyps,
                                    clean=clean, speakers=cases.speakers)
    assert official_wer(cases.refs, cases.hyps, clean=clean) == sclite_wer(ctm, stm)


@needs_sclite
def test_sclite_wer_on_the_edge_cases_alone(tmp_path):
    refs, hyps = [r.split() for r, _ in EDGE_CASES], [h.split() for _, h in EDGE_CASES]
    ids = [f"edge-{k:03d}" for k in range(len(refs))]
    for kit in KITS:
        ctm, stm = write_official_files(tmp_path, kit, ids, refs, hyps, clean=kit)
        assert official_wer(refs, hyps, clean=kit) == sclite_wer(ctm, stm)
