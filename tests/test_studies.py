"""The arithmetic behind the studies' claims: seed summaries, their interval, gap recovered,
and the premise checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from signkd.studies.common import paired, summarize
from signkd.studies.intervals import bootstrap_wers, paired_difference, verdict, wer_intervals
from signkd.studies.kd_ablation import gap_recovered
from signkd.studies.modalities import claims


def _run(errors: list[int], refs: list[int], dev: float = 10.0, seed: int = 1) -> dict:
    return {"seed": seed, "test_ids": [f"u{i}" for i in range(len(refs))], "test_errors": errors, "test_ref_words": refs,
            "dev_wer": dev, "test_wer": 100.0 * sum(errors) / sum(refs)}


def test_summary_is_the_mean_and_sample_spread_over_seeds():
    runs = [_run([1, 0, 1, 0], [5, 5, 5, 5]), _run([2, 0, 2, 0], [5, 5, 5, 5]), _run([3, 0, 3, 0], [5, 5, 5, 5])]
    s = summarize(runs)
    assert s["test_wer_mean"] == pytest.approx(20.0)  # 10, 20, 30
    assert s["test_wer_std"] == pytest.approx(10.0)  # sample std of 10, 20, 30
    assert s["seeds"] == 3 and s["test_wer_ci_low"] <= 20.0 <= s["test_wer_ci_high"]


def test_utterance_interval_collapses_when_every_utterance_has_the_same_error_rate():
    errors = np.array([[1, 1, 1, 1], [2, 2, 2, 2]])
    ci = wer_intervals(errors, np.array([4, 4, 4, 4]))
    assert ci["utt_ci_low"] == pytest.approx(37.5) and ci["utt_ci_high"] == pytest.approx(37.5)  # mean of 25% and 50%


def test_two_level_interval_counts_the_spread_between_seeds():
    # the same two seeds: utterances cannot move the mean, but another draw of seeds can (25% to 50%)
    errors = np.array([[1, 1, 1, 1], [2, 2, 2, 2]])
    ci = wer_intervals(errors, np.array([4, 4, 4, 4]))
    assert ci["ci_low"] == pytest.approx(25.0) and ci["ci_high"] == pytest.approx(50.0)


def test_utterances_are_drawn_once_for_every_seed_of_a_replicate():
    # seed A errs only on u0, seed B only on u1: any resample's mean over seeds is the same share
    errors = np.array([[4, 0], [0, 4]])
    wers = bootstrap_wers(errors, np.array([4, 4]), resample_seeds=False)
    # every resample gives seed A + seed B = 100% between them; independent draws per seed would not
    assert wers.min() == pytest.approx(50.0) and wers.max() == pytest.approx(50.0)


def test_runs_on_different_test_sets_are_refused():
    a, b = _run([1], [5]), _run([1], [5])
    b["test_ids"] = ["other"]
    with pytest.raises(ValueError, match="different test sets"):
        summarize([a, b])


def test_gap_recovered_is_the_share_of_the_no_kd_to_teacher_gap():
    block = {"no_kd": {"test_wer_mean": 30.0}, "teacher": {"test_wer_mean": 10.0},
             "logits": {"test_wer_mean": 25.0}, "hkd": {"test_wer_mean": 15.0}, "chain": {"test_wer_mean": 32.0}}
    assert gap_recovered(block) == {"logits": 0.25, "hkd": 0.75, "chain": -0.1}


def test_premise_claims_compare_the_best_fusion_with_the_best_single_stream():
    summary = {name: {"test_wer_mean": w} for name, w in {
        "video": 40.0, "keypoints": 30.0, "flow": 50.0, "fusion_early": 26.0, "fusion_late": 23.0,
        "fusion_attention": 28.0, "fusion_lateral": 35.0, "student_keypoints": 36.0}.items()}
    c = claims(summary)
    assert c["best_fusion"] == "fusion_late" and c["best_single_stream"] == "keypoints"
    assert c["fusion_relative_gain"] == pytest.approx(7 / 30, abs=1e-4) and c["fusion_beats_single_by_20pct"]
    assert c["student_over_teacher"] == pytest.approx(36 / 23, abs=1e-3) and c["student_at_least_1_5x_teacher"]


def test_a_run_is_keyed_on_the_params_sections_that_shape_it_and_nothing_else():
    from pathlib import Path

    from signkd.params import load_params
    from signkd.studies.common import KD_SECTIONS, STUDENT_SECTIONS, TEACHER_SECTIONS, run_key, with_updates

    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    kd_changed = with_updates(params, kd={"alpha": 0.31})
    assert run_key(params, "t", 1, sections=TEACHER_SECTIONS) == run_key(kd_changed, "t", 1, sections=TEACHER_SECTIONS)
    assert run_key(params, "s", 1, sections=KD_SECTIONS) != run_key(kd_changed, "s", 1, sections=KD_SECTIONS)
    teacher_changed = with_updates(params, teacher={"epochs": 5})
    assert run_key(params, "t", 1, sections=TEACHER_SECTIONS) != run_key(teacher_changed, "t", 1, sections=TEACHER_SECTIONS)
    assert run_key(params, "t", 1, sections=TEACHER_SECTIONS) != run_key(params, "t", 2, sections=TEACHER_SECTIONS)
    strided = with_updates(params, student={"frame_stride": 2})  # keyed once set away from every earlier run's 1
    assert run_key(params, "s", 1, sections=STUDENT_SECTIONS) != run_key(strided, "s", 1, sections=STUDENT_SECTIONS)


def test_premise_also_compares_the_fusion_with_a_longer_trained_single_stream_student():
    summary = {name: {"test_wer_mean": w} for name, w in {
        "video": 40.0, "keypoints": 30.0, "flow": 50.0, "fusion_early": 26.0, "fusion_late": 23.0,
        "fusion_attention": 28.0, "fusion_lateral": 35.0, "student_keypoints": 25.0}.items()}
    c = claims(summary)
    assert c["fusion_relative_gain"] == pytest.approx(7 / 30, abs=1e-4)  # teacher-sized streams only
    assert c["fusion_relative_gain_vs_any_single_stream_model"] == pytest.approx(2 / 25, abs=1e-4)


def test_paired_difference_sees_a_consistent_gain_that_the_two_marginal_intervals_cannot():
    rng = np.random.default_rng(0)
    refs = [4] * 300
    base = rng.integers(0, 3, size=300)  # hard and easy utterances, shared by both models
    better = np.where((np.arange(300) % 4 == 0) & (base > 0), base - 1, base)  # one error fewer on a quarter of them
    runs = lambda e: [_run(list(map(int, e)), refs, seed=s) for s in (1, 2, 3)]  # noqa: E731
    a, b = summarize(runs(base)), summarize(runs(better))
    assert a["test_wer_utt_ci_low"] < b["test_wer_utt_ci_high"], "set-up: the marginal intervals overlap"
    gain = paired(runs(better), runs(base))  # positive: the first (better) has the lower WER
    assert gain["mean"] == pytest.approx(100 * (base.sum() - better.sum()) / sum(refs), abs=1e-3)
    assert 0 < gain["ci_low"] < gain["mean"] < gain["ci_high"] and gain["seeds_better"] == "3/3"
    reverse = paired(runs(base), runs(better))
    assert reverse["ci_high"] < 0 and reverse["seeds_better"] == "0/3"
    same = paired(runs(base), runs(base))
    assert (same["mean"], same["ci_low"], same["ci_high"], same["seeds_better"]) == (0.0, 0.0, 0.0, "0/3")


def test_a_gain_on_some_seeds_only_is_not_resolved_though_each_seed_is_sure():
    # seed 1: the first model is 10 points better on every utterance; seeds 2, 3: 5 points worse
    refs = np.full(200, 10)
    second = np.full((3, 200), 2)
    first = second + np.array([[-1], [1], [1]]) * np.array([1, 0.5, 0.5])[:, None] * 1  # -1, +0.5, +0.5 errors per utt
    p = paired_difference(first, second, refs)
    assert p["seed_diffs"] == [10.0, -5.0, -5.0] and p["seeds_better"] == "1/3"
    assert p["utt_ci_low"] == p["utt_ci_high"] == pytest.approx(0.0), "utterances alone cannot see the seed spread"
    assert p["ci_low"] < 0 < p["ci_high"]
    assert "not resolved" in verdict("a", "b", p)
    assert "(resolved)" in verdict("a", "b", {**p, "ci_low": 0.5, "ci_high": 2.0})


def test_paired_runs_must_share_their_seeds():
    a = [_run([1, 0], [5, 5], seed=1), _run([1, 0], [5, 5], seed=2)]
    b = [_run([1, 0], [5, 5], seed=1), _run([1, 0], [5, 5], seed=3)]
    with pytest.raises(ValueError, match="same seeds"):
        paired(a, b)


# --- the ledger: a study spans sessions and machines ----------------------------------------------

def test_a_recorded_run_is_not_run_again_even_without_its_weights(tmp_path, monkeypatch):
    """The record (committed under studies/runs/) is what a later session reads; a changed key reruns."""
    from signkd.studies.common import LEDGER, cached

    monkeypatch.chdir(tmp_path)
    calls = []

    def fit() -> dict:
        calls.append(1)
        return {"dev_wer": 9.0, "test_errors": [1, 2]}

    first = cached(tmp_path / "models" / "studies" / "toy", "teacher", 3, "k1", fit)
    assert (LEDGER / "toy" / "teacher-seed3.json").is_file() and first["machine"]["torch"]
    assert cached(tmp_path / "elsewhere" / "toy", "teacher", 3, "k1", fit) == first and len(calls) == 1
    cached(tmp_path / "models" / "studies" / "toy", "teacher", 3, "k2", fit)
    assert len(calls) == 2


def test_a_teacher_is_refitted_only_when_a_student_needs_its_weights(tmp_path, monkeypatch):
    from signkd.params import load_params
    from signkd.studies import kd_ablation
    from signkd.studies.common import digest

    root = Path(__file__).resolve().parents[1]
    params = load_params(root / "params.yaml").model_copy(update={"seed": 4})
    monkeypatch.chdir(tmp_path)
    outcomes = iter([[1, 0, 2], [1, 1, 2]])  # the refit on "another machine" comes out different

    def fit(self) -> dict:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "model.safetensors").write_bytes(b"weights")
        return {"dev_wer": 5.0, "test_errors": next(outcomes)}

    monkeypatch.setattr(kd_ablation.SeedTeacher, "_fit", fit)
    teacher = kd_ablation.SeedTeacher(params, {}, None)
    before = teacher.digest
    (teacher.directory / "model.safetensors").unlink()  # a new session: the ledger, not the weights
    again = kd_ablation.SeedTeacher(params, {}, None)
    assert again.digest == before, "the record is read, nothing is refitted"
    again.ensure_weights()
    assert (again.directory / "model.safetensors").is_file() and again.record["test_errors"] == [1, 1, 2]
    assert again.digest != before == digest({**again.record, "test_errors": [1, 0, 2]}), \
        "students distilled from the old teacher are keyed on its outcome, so they are redone"
