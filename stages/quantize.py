"""Stage quantize: export the distilled student to ONNX, quantise it to int8, and measure size,
CPU latency and dev/test WER of the int8 model against the fp32 one.

The fp32 ONNX model must give exactly the PyTorch model's hypotheses on dev and test (the same
inference path, batched in PyTorch and one utterance at a time in ONNX Runtime); the stage
fails loudly otherwise, because every WER measured in PyTorch would then not be the deployed one.
"""

from pathlib import Path

import mlflow
import numpy as np

from signkd.experiment import decoding, load_splits, scoring_clean, vocabulary, write_hypotheses
from signkd.inference import OnnxBackend, TorchBackend, score
from signkd.models.checkpoint import load_checkpoint, model_size_mb
from signkd.params import Params
from signkd.quantize import export_onnx, latency_ms_per_100_frames, model_input, quantize_int8
from signkd.stage import StageError, run_stage
from signkd.training.data import collate

STAGE = "quantize"
OUT = Path("models/quantize")


def check_export_matches(torch_hyps: dict, onnx_hyps: dict, items: dict) -> None:
    for split, hyps in torch_hyps.items():
        differ = [it.id for it, a, b in zip(items[split], hyps, onnx_hyps[split]) if a != b]
        if differ:
            raise StageError(
                f"fp32 ONNX and PyTorch disagree on {len(differ)} {split} hypotheses (first: {differ[0]}); "
                "the export or the model's padding handling is broken, so no WER here would be the deployed one"
            )


def main(params: Params) -> dict:
    vocab = vocabulary(params)
    student, config = load_checkpoint("models/distill")
    name = model_input(student)
    items = load_splits(params, vocab, (name,), splits=("dev", "test"))
    example = collate(items["dev"][:1])[name]
    fp32 = export_onnx(student, example, OUT / "student_fp32.onnx", config)
    int8 = quantize_int8(fp32, OUT / "student_int8.onnx")
    mlflow.log_artifact(str(int8))

    clean, dec = scoring_clean(params), decoding(params)
    backends = {"torch": TorchBackend(student), "fp32": OnnxBackend(fp32), "int8": OnnxBackend(int8)}
    metrics: dict[str, float] = {
        "model_size_mb": round(model_size_mb(int8), 4),
        "fp32_onnx_size_mb": round(model_size_mb(fp32), 4),
    }
    hyps: dict[str, dict] = {}
    for backend_name, backend in backends.items():
        hyps[backend_name] = {}
        for split, split_items in items.items():
            wer, hyps[backend_name][split] = score(backend, split_items, vocab.glosses, dec, clean)
            prefix = split if backend_name == "int8" else f"{backend_name}_{split}"
            metrics.update(wer.as_metrics(prefix))
    check_export_matches(hyps["torch"], hyps["fp32"], items)
    write_hypotheses(STAGE, items["test"], hyps["int8"]["test"], "test", clean)

    test_items = items["test"]
    ref_lp = backends["fp32"].log_probs(test_items)
    metrics["int8_max_logprob_diff"] = round(
        max(float(np.abs(a - b).max()) for a, b in zip(ref_lp, backends["int8"].log_probs(test_items))), 5
    )
    metrics["fp32_max_logprob_diff_vs_torch"] = round(
        max(float(np.abs(a - b).max()) for a, b in zip(ref_lp, backends["torch"].log_probs(test_items))), 6
    )
    frames = [it.num_frames for it in test_items]
    runs = params.quantize.latency_runs
    for backend_name in ("fp32", "int8"):
        run_one = backends[backend_name].run
        metrics[f"{backend_name}_latency_ms"] = round(latency_ms_per_100_frames(run_one, test_items, frames, runs), 4)
    torch_one = backends["torch"].log_probs
    metrics["torch_latency_ms"] = round(
        latency_ms_per_100_frames(lambda it: torch_one([it]), test_items, frames, runs), 4
    )
    for split in ("dev", "test"):
        metrics[f"{split}_wer_change_int8_vs_fp32"] = round(metrics[f"{split}_wer"] - metrics[f"fp32_{split}_wer"], 4)
    return metrics


if __name__ == "__main__":
    run_stage(STAGE, main)
