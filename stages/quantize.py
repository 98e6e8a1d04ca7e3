"""Stage quantize: export the distilled student to ONNX, quantise it to int8, and measure
size, CPU latency and test WER of the int8 model against the fp32 one."""

from pathlib import Path

import mlflow
import torch

from signkd.experiment import load_splits, scoring_clean, vocabulary, write_hypotheses
from signkd.models.checkpoint import load_checkpoint, model_size_mb
from signkd.params import Params
from signkd.quantize import OnnxRecognizer, export_onnx, latency_ms, onnx_hypotheses, quantize_int8
from signkd.scoring import official_wer
from signkd.stage import run_stage

STAGE = "quantize"
OUT = Path("models/quantize")


def main(params: Params) -> dict:
    vocab = vocabulary(params)
    student, config = load_checkpoint("models/distill")
    items = load_splits(params, vocab, ("keypoints",), splits=("dev", "test"))
    fp32 = export_onnx(student, config["keypoint_dim"], OUT / "student_fp32.onnx")
    int8 = quantize_int8(fp32, OUT / "student_int8.onnx")
    mlflow.log_artifact(str(int8))

    clean = scoring_clean(params)
    metrics: dict[str, float] = {
        "model_size_mb": round(model_size_mb(int8), 4),
        "fp32_onnx_size_mb": round(model_size_mb(fp32), 4),
    }
    for name, path in (("fp32", fp32), ("int8", int8)):
        runner = OnnxRecognizer(path)
        for split, split_items in items.items():
            feats = [it.tensors["keypoints"].numpy() for it in split_items]
            hyps = onnx_hypotheses(runner, feats, vocab.glosses, params.decode.method, params.decode.beam_width)
            wer = official_wer([list(it.glosses) for it in split_items], hyps, clean=clean)
            prefix = split if name == "int8" else f"fp32_{split}"
            metrics.update(wer.as_metrics(prefix))
            if name == "int8" and split == "test":
                write_hypotheses(STAGE, split_items, hyps, split, clean)
                lat = latency_ms(runner.log_probs, feats, params.quantize.latency_runs)
                metrics.update({"int8_latency_ms": round(lat["mean"], 3), "int8_latency_p95_ms": round(lat["p95"], 3)})
            if name == "fp32" and split == "test":
                lat = latency_ms(runner.log_probs, feats, params.quantize.latency_runs)
                metrics["fp32_latency_ms"] = round(lat["mean"], 3)
    with torch.no_grad():
        feats = [it.tensors["keypoints"] for it in items["test"]]

        def torch_forward(x):
            return student({"keypoints": x[None], "lengths": torch.tensor([x.shape[0]])}).seq_logits

        metrics["torch_latency_ms"] = round(latency_ms(torch_forward, feats, params.quantize.latency_runs)["mean"], 3)
    metrics["wer_change_int8_vs_fp32"] = round(metrics["test_wer"] - metrics["fp32_test_wer"], 4)
    return metrics


if __name__ == "__main__":
    run_stage(STAGE, main)
