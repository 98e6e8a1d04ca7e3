"""Stage quantize: export the distilled student to ONNX, choose its int8 form per operator by
measurement, check it against fp32, measure the Phoenix-scale models beside it, register it.

The fp32 ONNX model must give exactly the PyTorch model's hypotheses on dev and test (the same
inference path, batched in PyTorch and one utterance at a time in ONNX Runtime); the stage
fails loudly otherwise, because every WER measured in PyTorch would then not be the deployed one.

int8 (see `signkd.quantize`): per op type fp32, dynamic or static (QDQ, calibrated on training
features), chosen by 1-thread latency; the choice must keep the dev WER within MAX_WER_CHANGE of
fp32, else ONNX Runtime's plain dynamic quantisation is used. In the same run,
benchmarks/model_size.py measures the Phoenix-profile student and a KD-MSLRT-sized reference,
and TFLite files are made when the `[tflite]` extra is installed. The fp32 and int8 models are
logged to MLflow and registered; `champion` moves only to a version no worse on dev.
"""

import importlib.util
import logging
import shutil
import tempfile
import time
from pathlib import Path

import _env  # noqa: F401  (first: a clear message outside the virtual environment)
import mlflow
import numpy as np

from signkd.experiment import decoding, load_splits, scoring_clean, vocabulary, write_hypotheses
from signkd.inference import OnnxBackend, TorchBackend, score
from signkd.io import atomic_path
from signkd.models.checkpoint import load_checkpoint, model_size_mb
from signkd.params import Params
from signkd.quantize import (
    DYNAMIC_ALL,
    TfliteBackend,
    export_onnx,
    export_tflite,
    latency_ms_per_100_frames,
    model_input,
    search_plan,
)
from signkd.registry import log_and_register, registered_name
from signkd.stage import StageError, run_stage
from signkd.training.data import collate

STAGE = "quantize"
OUT = Path("models/quantize")
BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "model_size.py"
CALIBRATION_VIDEOS = 128  # training utterances whose activation ranges fix the static int8 scales
MAX_WER_CHANGE = 0.5  # absolute dev WER points int8 may lose against fp32
log = logging.getLogger(STAGE)


def check_export_matches(torch_hyps: dict, onnx_hyps: dict, items: dict) -> None:
    for split, hyps in torch_hyps.items():
        differ = [it.id for it, a, b in zip(items[split], hyps, onnx_hyps[split]) if a != b]
        if differ:
            raise StageError(
                f"fp32 ONNX and PyTorch disagree on {len(differ)} {split} hypotheses (first: {differ[0]}); "
                "the export or the model's padding handling is broken, so no WER here would be the deployed one"
            )


def max_logprob_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


def model_size_benchmark():
    """benchmarks/model_size.py as a module (benchmarks/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("signkd_benchmark_model_size", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(params: Params) -> dict:
    vocab = vocabulary(params)
    student, config = load_checkpoint("models/distill")
    name = model_input(student)
    items = load_splits(params, vocab, (name,), splits=("train", "dev", "test"), student=True)
    arrays = {split: [collate([it])[name][0].numpy() for it in split_items] for split, split_items in items.items()}
    fp32 = export_onnx(student, collate(items["dev"][:1])[name], OUT / "student_fp32.onnx", config)
    runs = params.quantize.latency_runs
    clean, dec = scoring_clean(params), decoding(params)
    metrics: dict[str, float | str] = {"fp32_onnx_size_mb": round(model_size_mb(fp32), 4)}

    backends = {"torch": TorchBackend(student), "fp32": OnnxBackend(fp32)}
    hyps: dict[str, dict] = {}
    lps: dict[str, dict] = {}

    def evaluate(backend_name: str, prefix: str | None) -> None:
        hyps[backend_name], lps[backend_name] = {}, {}
        for split in ("dev", "test"):
            lps[backend_name][split] = backends[backend_name].log_probs(items[split])
            wer, hyps[backend_name][split] = score(_Fixed(lps[backend_name][split]), items[split], vocab.glosses, dec, clean)
            metrics.update(wer.as_metrics(split if prefix is None else f"{prefix}_{split}"))

    evaluate("torch", "torch")
    evaluate("fp32", "fp32")
    check_export_matches(hyps["torch"], hyps["fp32"], items)

    fallback = 0
    with tempfile.TemporaryDirectory() as work:
        calibration = arrays["train"][:CALIBRATION_VIDEOS]
        plan, results, fp32_ms = search_plan(fp32, Path(work), calibration, arrays["test"], runs)
        for plan_name, result in results.items():
            metrics[f"plan_{plan_name}_latency_ms"] = round(result.latency_ms, 4)
            metrics[f"plan_{plan_name}_size_mb"] = round(result.size_mb, 4)
        backends["dynamic"] = OnnxBackend(results[DYNAMIC_ALL.name].path)
        evaluate("dynamic", "dynamic")
        backends["int8"] = OnnxBackend(results[plan.name].path)
        evaluate("int8", None)
        if metrics["dev_wer"] - metrics["fp32_dev_wer"] > MAX_WER_CHANGE and plan != DYNAMIC_ALL:
            log.warning("int8 plan %s loses %.2f dev WER points (> %.1f): using dynamic int8", plan.name,
                        metrics["dev_wer"] - metrics["fp32_dev_wer"], MAX_WER_CHANGE)
            plan, fallback = DYNAMIC_ALL, 1
            backends["int8"] = backends["dynamic"]
            evaluate("int8", None)
        chosen = results[plan.name]
        int8 = OUT / "student_int8.onnx"
        with atomic_path(int8) as tmp:
            shutil.copyfile(chosen.path, tmp)
    write_hypotheses(STAGE, items["test"], hyps["int8"]["test"], "test", clean)

    metrics |= {
        "model_size_mb": round(model_size_mb(int8), 4),
        "int8_plan": plan.name,
        "int8_plan_fallback": fallback,
        "int8_latency_ms": round(chosen.latency_ms, 4),
        "fp32_latency_ms": round(fp32_ms, 4),
        "dynamic_int8_size_mb": round(results[DYNAMIC_ALL.name].size_mb, 4),
        "dynamic_int8_latency_ms": round(results[DYNAMIC_ALL.name].latency_ms, 4),
        "int8_max_logprob_diff": round(max_logprob_diff(lps["fp32"]["test"], lps["int8"]["test"]), 5),
        "int8_max_logprob_diff_dev": round(max_logprob_diff(lps["fp32"]["dev"], lps["int8"]["dev"]), 5),
        "fp32_max_logprob_diff_vs_torch": round(max_logprob_diff(lps["fp32"]["test"], lps["torch"]["test"]), 6),
    }
    torch_one = backends["torch"].log_probs
    metrics["torch_latency_ms"] = round(latency_ms_per_100_frames(
        lambda it: torch_one([it]), items["test"], [it.num_frames for it in items["test"]], runs), 4)
    for split in ("dev", "test"):
        metrics[f"{split}_wer_change_int8_vs_fp32"] = round(metrics[f"{split}_wer"] - metrics[f"fp32_{split}_wer"], 4)

    metrics |= tflite_metrics(student, arrays, items, vocab, dec, clean, runs)
    metrics |= model_size_benchmark().phoenix_metrics(runs)
    register(params, fp32, int8, metrics)
    mlflow.set_tags({k: v for k, v in metrics.items() if isinstance(v, str)})  # the plans: MLflow metrics are numbers
    return metrics


class _Fixed:
    """Log-probabilities already computed, as a backend (so `score` does not run a model twice)."""

    def __init__(self, lps: list[np.ndarray]):
        self.lps = lps

    def log_probs(self, items) -> list[np.ndarray]:
        return self.lps


def tflite_metrics(student, arrays, items, vocab, dec, clean, runs) -> dict:
    """Size, 1-thread latency and WER of the TFLite int8 model, when the `[tflite]` extra is installed."""
    if importlib.util.find_spec("litert_torch") is None:
        log.info("TFLite skipped: install the [tflite] extra (litert-torch) for KD-MSLRT's format")
        return {}
    feature_dim = arrays["dev"][0].shape[1]
    # the converter unrolls the LSTMs over the window: the smallest multiple of 64 frames that holds
    # every dev/test video keeps the file and the conversion time down
    longest = max(len(x) for split in ("dev", "test") for x in arrays[split])
    window = 64 * -(-longest // 64)
    fp32_tfl, int8_tfl = export_tflite(student, feature_dim, OUT / "student_fp32.tflite", OUT / "student_int8.tflite",
                                       window=window)
    backend = TfliteBackend(int8_tfl)
    out = {"tflite_model_size_mb": round(model_size_mb(int8_tfl), 4), "tflite_fp32_size_mb": round(model_size_mb(fp32_tfl), 4),
           "tflite_window_frames": window}
    for split in ("dev", "test"):
        wer, _ = score(backend, items[split], vocab.glosses, dec, clean)
        out[f"tflite_{split}_wer"] = wer.wer
    full = arrays["test"][0][np.arange(window) % len(arrays["test"][0])]  # a window of real features
    # per 100 frames of the fixed window the TFLite model always computes; thread CPU time, as ONNX's
    out["tflite_int8_latency_ms"] = round(latency_ms_per_100_frames(
        backend.run_array, [full], [window], runs, clock=time.thread_time), 4)
    return out


def register(params: Params, fp32: Path, int8: Path, metrics: dict) -> None:
    """Log both models with their signatures and register them; tag the run with the outcome."""
    for path, precision, dev_wer in ((fp32, "fp32", metrics["fp32_dev_wer"]), (int8, "int8", metrics["dev_wer"])):
        reg = log_and_register(path, registered_name(params.data.dataset, precision), float(dev_wer), f"student_{precision}")
        mlflow.set_tags({f"registry.{precision}.name": reg.name, f"registry.{precision}.version": reg.version,
                         f"registry.{precision}.champion": str(reg.champion)})


if __name__ == "__main__":
    run_stage(STAGE, main)
