"""The modality study: does fusing video, keypoints and flow beat every single stream?

Trains, for each seed, teacher-sized single-stream models (`video`, `keypoints`, `flow`), the
teacher with every fusion variant (`fusion_early`, `_late`, `_attention`, `_lateral`) and the
deployable keypoint student without distillation (`student_keypoints`), all with the settings
of params.yaml (only the seed, the streams and the fusion change), and writes

  reports/modalities/metrics.json   {"<model>": {"test_wer_mean", "test_wer_std", "test_wer_ci_low",
                                                 "test_wer_ci_high", "test_wer_utt_ci_low", "test_wer_utt_ci_high",
                                                 "seeds", ...}, "claims": {...},
                                     "paired": {"fusion_early_vs_<model>": {"mean", "ci_low", "ci_high", "seeds_better", ...}}}
      (the two-level and utterance-only intervals and the paired block: signkd.studies.intervals)
  reports/modalities/README.md      the table, with the premise's two checks
  reports/modalities/wer.png        bars with the intervals, one dot per seed

Run: `make modality-study` (= `dvc repro studies/dvc.yaml:modality_study`); runs are cached in
models/studies/modalities/, so an interrupted study resumes.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, cast

from signkd.experiment import (
    decoding,
    keypoint_dim,
    new_model,
    scoring_clean,
    student_config,
    teacher_config,
    train_config,
)
from signkd.io import write_json, write_text
from signkd.models.recognizer import FUSIONS
from signkd.params import Params, TrainParams
from signkd.studies.common import (
    STUDENT_SECTIONS,
    TEACHER_SECTIONS,
    bar_chart,
    cached,
    load_all,
    markdown_table,
    only,
    paired,
    paired_lines,
    run_key,
    study_vocabulary,
    summarize,
    test_record,
    with_updates,
)
from signkd.studies.corpus import study_params
from signkd.training.trainer import evaluate, train

STUDY_DIR = Path("models/studies/modalities")
REPORT_DIR = Path("reports/modalities")
SINGLE = ("video", "keypoints", "flow")
LABELS = {
    "video": "RGB video only (teacher size)", "keypoints": "keypoints only (teacher size)",
    "flow": "optical flow only (teacher size)", "student_keypoints": "deployable keypoint student, no KD",
    **{f"fusion_{f}": f"teacher, {f} fusion" for f in FUSIONS},
}


def variants(params: Params) -> dict[str, tuple[Params, str]]:
    """model name -> (its params, 'teacher' | 'student')."""
    out: dict[str, tuple[Params, str]] = {}
    for m in SINGLE:
        out[m] = (with_updates(params, teacher={"modalities": [m], "fusion": "early"}), "teacher")
    for f in FUSIONS:
        out[f"fusion_{f}"] = (with_updates(params, teacher={"modalities": list(SINGLE), "fusion": f}), "teacher")
    out["student_keypoints"] = (with_updates(params, student={"modality": "keypoints"}), "student")
    return out


def train_one(params: Params, role: str, items: dict, vocab) -> dict:
    section: TrainParams  # the teacher's or the student's
    if role == "teacher":
        config, section, inputs = teacher_config(params, keypoint_dim(params), vocab), params.teacher, tuple(params.teacher.modalities)
    else:
        config, section, inputs = student_config(params, keypoint_dim(params), vocab), params.student, (params.student.modality,)
    model = new_model(config, params.seed)
    data = {k: only(v, inputs) for k, v in items.items()}
    result = train(model, data["train"], data["dev"], vocab, train_config(params, section), None, None, f"seed {params.seed}")
    test, hyps = evaluate(model, data["test"], vocab, decoding(params), scoring_clean(params))
    return {"dev_wer": result.best_dev_wer, "test_wer": test.wer, "best_epoch": result.best_epoch,
            **test_record(data["test"], hyps, scoring_clean(params))}


def claims(summary: dict[str, dict]) -> dict:
    """The premise, checked on the means: the best fusion >= 20% (relative) below the best single
    stream, and the deployable student's WER >= 1.5x the teacher's."""
    fused = {k: v for k, v in summary.items() if k.startswith("fusion_")}
    singles = {k: v for k, v in summary.items() if k in SINGLE}
    best_fused = min(fused, key=lambda k: fused[k]["test_wer_mean"])
    best_single = min(singles, key=lambda k: singles[k]["test_wer_mean"])
    t, s = fused[best_fused]["test_wer_mean"], singles[best_single]["test_wer_mean"]
    student = summary["student_keypoints"]["test_wer_mean"]
    any_single = min(s, student)  # the student is single-stream too, and trained longer (student.epochs)
    return {"best_fusion": best_fused, "best_single_stream": best_single,
            "fusion_relative_gain": round((s - t) / s, 4) if s else 0.0,
            "fusion_beats_single_by_20pct": bool(s and (s - t) / s >= 0.2),
            "fusion_relative_gain_vs_any_single_stream_model": round((any_single - t) / any_single, 4) if any_single else 0.0,
            "student_over_teacher": round(student / t, 3) if t else None,
            "student_at_least_1_5x_teacher": bool(t and student / t >= 1.5)}


def run(params: Params, seeds: list[int], models: list[str] | None = None, write_report: bool = True) -> dict:
    vocab = study_vocabulary(params)
    items = load_all(params, vocab)
    chosen = variants(params)
    runs: dict[str, list[dict]] = {}
    for name, (p, role) in chosen.items():
        if models and name not in models:
            continue
        for seed in seeds:
            ps = p.model_copy(update={"seed": seed})
            key = run_key(ps, name, seed, sections=TEACHER_SECTIONS if role == "teacher" else STUDENT_SECTIONS)
            # cast: mypy cannot infer a lambda with default arguments against Callable[[], dict]
            run_one = cast(Callable[[], dict], lambda ps=ps, role=role: train_one(ps, role, items, vocab))
            runs.setdefault(name, []).append(cached(STUDY_DIR, name, seed, key, run_one))
    if not write_report:  # --runs-only: the records are in the ledger; the report needs every seed
        return {}
    summary = {name: summarize(rs) for name, rs in runs.items()}
    report = {**summary, "claims": claims(summary)} if {"student_keypoints", *SINGLE} <= set(summary) else dict(summary)
    fused = f"fusion_{params.teacher.fusion}"  # the pipeline's teacher, chosen before this study looked at test
    report["paired"] = {f"{fused}_vs_{other}": paired(runs[fused], runs[other]) for other in runs if fused in runs and other != fused}
    write_json(REPORT_DIR / "metrics.json", report)
    bar_chart(summary, REPORT_DIR / "wer.png", f"Modality study, {len(seeds)} seeds")
    _write_readme(summary, report.get("claims"), report["paired"], seeds, len(runs[next(iter(runs))][0]["test_ids"]))
    return report


def _write_readme(summary: dict, checks: dict | None, pairs: dict, seeds: list[int], n_test: int) -> None:
    lines = ["# Modality study", "",
             f"Test WER over seeds {seeds} on {n_test} test sentences. 95% CIs of the mean over seeds by bootstrap: "
             "over seeds and test utterances (what another training run would give), and over utterances only "
             "(these trained models on other sentences); see src/signkd/studies/intervals.py. "
             "Written by `python -m signkd.studies.modalities`; do not edit.", "",
             markdown_table(summary, LABELS), "", "![test WER per model](wer.png)", ""]
    if pairs:
        lines += ["## Paired, same seed", "", "Test WER points the first model is better by; 95% CI over seeds and utterances.", "",
                  *paired_lines(pairs, {k: tuple(k.split("_vs_")) for k in pairs}), ""]
    if checks:
        lines += ["## The premise", "",
                  f"- best fusion `{checks['best_fusion']}` vs best single stream `{checks['best_single_stream']}`: "
                  f"{100 * checks['fusion_relative_gain']:.1f}% lower WER (target >= 20%: "
                  f"{'met' if checks['fusion_beats_single_by_20pct'] else 'NOT met'}); against the best single-stream "
                  f"model of any size (the keypoint student included): "
                  f"{100 * checks['fusion_relative_gain_vs_any_single_stream_model']:.1f}% lower",
                  f"- deployable keypoint student / best teacher WER: {checks['student_over_teacher']} (target >= 1.5: "
                  f"{'met' if checks['student_at_least_1_5x_teacher'] else 'NOT met'})", ""]
    write_text(REPORT_DIR / "README.md", "\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--models", nargs="*", help="a subset of the models (default: all)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--runs-only", action="store_true",
                        help="train and record these seeds' runs in the ledger, write no report (to share seeds out)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # small models beside other work: one thread is fastest here
    report = run(study_params(args.params), args.seeds, args.models, not args.runs_only)
    if args.runs_only:
        return
    print({k: v.get("test_wer_mean", v) for k, v in report.items()})


if __name__ == "__main__":
    main()
