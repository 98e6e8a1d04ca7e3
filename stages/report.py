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
        f"- KD: recipe `{params.kd.recipe}`, alpha {distill.get('alpha', params.kd.alpha):.3f}, temperature "
        f"{_temperature(params, tune)}",
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


def _temperature(params: Params, tune: dict) -> str:
    if params.kd.use_tuned:
        return f"{tune['best_temperature']:.3f} (tuned by Optuna, {tune['n_trials']} trials)"
    return f"{params.kd.temperature} (fixed)"


if __name__ == "__main__":
    run_stage(STAGE, main)
