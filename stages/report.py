"""Stage report: collect every stage's figures into reports/README.md (table + plot)."""

import _env  # noqa: F401  (first: a clear message outside the virtual environment)

from pathlib import Path

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
    out = write_report(REPORTS, context)
    return {f"{r['stage']}_test_wer": r["test_wer"] for r in out["rows"] if r["test_wer"] is not None}


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
