"""Stage report: collect every stage's figures into reports/README.md (table + plot)."""

import json
from pathlib import Path

import _env  # noqa: F401  (first: a clear message outside the virtual environment)

from signkd.params import Params
from signkd.report import load_metrics, write_report
from signkd.stage import run_stage

STAGE = "report"
REPORTS = Path("reports")


def main(params: Params) -> dict:
    kp = load_metrics(REPORTS, "extract_keypoints")
    tune = load_metrics(REPORTS, "tune")
    q = load_metrics(REPORTS, "quantize")
    targets = load_metrics(REPORTS, "teacher_targets")
    distill = load_metrics(REPORTS, "distill")
    context = [
        "## Setup",
        f"- dataset: `{params.data.dataset}`, seed {params.seed}, decoder `{params.decode.method}` "
        f"(beam width {params.decode.beam_width}); teacher `{params.teacher.fusion}` fusion of "
        f"{', '.join(params.teacher.modalities)}; student `{params.student.modality}`",
        f"- KD: recipe `{params.kd.recipe}`, {_kd_settings(distill, tune)}",
        f"- teacher targets: `{targets.get('method')}`; mean max-posterior on the training videos "
        f"{targets.get('in_sample_target_confidence', float('nan')):.3f} in-sample"
        + (f" vs {targets['out_of_fold_target_confidence']:.3f} out-of-fold" if "out_of_fold_target_confidence" in targets else ""),
        "- keypoint detection rates: " + ", ".join(f"{k} {v:.3f}" for k, v in kp.items() if k.startswith("detection_rate")),
        f"- latency per 100 frames (ONNX Runtime, 1 thread, median): int8 {q.get('int8_latency_ms', float('nan')):.3f} ms "
        f"vs fp32 {q.get('fp32_latency_ms', float('nan')):.3f} ms; fp32 ONNX hypotheses equal PyTorch's on dev and test "
        "(checked by `quantize`)",
    ]
    context += one_draw(params, REPORTS / "kd_ablation" / "metrics.json")
    out = write_report(REPORTS, context)
    return {f"{r['stage']}_test_wer": r["test_wer"] for r in out["rows"] if r["test_wer"] is not None}


STUDY_MODELS = (("teacher", "teacher"), ("no_kd", "student without KD"), ("logits", "logits KD"), ("hkd", "HKD"),
                ("chain", "chain"))


def one_draw(params: Params, study: Path) -> list[str]:
    """The table above is one training run (one seed); what the KD ablation measured over seeds
    sits beside it, so nobody reads one draw as the claim. `study` is read as committed: it is
    not a DVC dependency of this stage, or `dvc repro` would run the study (hours) first."""
    lines = ["## One draw, and the seed-aware figures",
             f"Every figure above comes from one training run (seed {params.seed}): another seed, or the same "
             "seed on another machine (MediaPipe and torch CPU kernels differ), can move them by more than "
             "their intervals, which count test utterances only."]
    if not study.is_file():
        return lines + ["The multi-seed figures are in `reports/kd_ablation/` once `make kd-ablation` has run."]
    report = json.loads(study.read_text(encoding="utf-8"))
    block = report.get(params.student.modality, {})
    seeds = report.get("settings", {}).get("seeds", [])
    two_level = any("test_wer_utt_ci_low" in v for v in block.values() if isinstance(v, dict))
    what = "seeds and test utterances" if two_level else "test utterances only (seeds held fixed)"
    rows = [f"| {label} | {block[k]['test_wer_mean']:.2f} | [{block[k]['test_wer_ci_low']:.2f}, {block[k]['test_wer_ci_high']:.2f}] |"
            for k, label in STUDY_MODELS if k in block]
    kd = report.get("settings", {})
    used = f"KD temperature {kd.get('temperature', float('nan')):.2f}, alpha {kd.get('alpha', float('nan')):.2f}"
    return lines + [f"The KD ablation (`reports/kd_ablation/`, {params.student.modality} student, seeds {seeds}, "
                    f"its own 1,000-sentence test set, {used}; 95% CI over {what}):",
                    "| model | test WER % mean over seeds | 95% CI |\n|---|---:|---:|\n" + "\n".join(rows)]


def _kd_settings(distill: dict, tune: dict) -> str:
    """The settings distill used, and which of them the tune stage chose."""
    searched = [k for k in tune.get("searched", "").split("+") if k]
    used = (f"temperature {distill.get('temperature', float('nan')):.3f}, alpha {distill.get('alpha', float('nan')):.3f}, "
            "level weights " + "/".join(f"{distill.get(f'level_weight_{lv}', float('nan')):.2f}"
                                        for lv in ("frame", "temporal", "sequence")))
    if not searched:
        return used + " (all from params.yaml)"
    return used + (f" ({', '.join(searched)} tuned by Optuna: {tune.get('n_trials')} trials, "
                   f"{tune.get('epochs_trained')} epochs in all; the rest from params.yaml)")


if __name__ == "__main__":
    run_stage(STAGE, main)
