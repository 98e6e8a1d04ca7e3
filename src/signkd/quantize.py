"""Deployable student: ONNX export, int8 quantisation, and an ONNX Runtime recogniser.

Dynamic int8 quantisation (weights int8, activations quantised on the fly) suits a small
LSTM/linear model on CPU: no calibration set is needed and the size drops about 4x.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from torch import nn

from signkd.io import atomic_path


class _SeqLogProbs(nn.Module):
    """Keypoint features [1, T, F] -> sequence-head log-probabilities [1, T // 4, C]."""

    def __init__(self, student: nn.Module):
        super().__init__()
        self.student = student

    def forward(self, keypoints: torch.Tensor) -> torch.Tensor:
        lengths = torch.full((keypoints.shape[0],), keypoints.shape[1], dtype=torch.long)
        out = self.student({"keypoints": keypoints, "lengths": lengths})
        return out.seq_logits.log_softmax(-1)


def export_onnx(student: nn.Module, keypoint_dim: int, path: str | Path, example_frames: int = 48) -> Path:
    """Export with a dynamic frame axis (any video length)."""
    student.eval()
    example = torch.zeros(1, example_frames, keypoint_dim)
    with atomic_path(path) as tmp:
        torch.onnx.export(
            _SeqLogProbs(student).eval(), (example,), str(tmp), input_names=["keypoints"], output_names=["log_probs"],
            dynamic_axes={"keypoints": {1: "frames"}, "log_probs": {1: "steps"}}, opset_version=17, dynamo=False,
        )
        onnx.checker.check_model(str(tmp))
    return Path(path)


def quantize_int8(fp32_path: str | Path, int8_path: str | Path) -> Path:
    with atomic_path(int8_path) as tmp:
        quantize_dynamic(str(fp32_path), str(tmp), weight_type=QuantType.QInt8)
        onnx.checker.check_model(str(tmp))
    return Path(int8_path)


class OnnxRecognizer:
    """Runs an exported student with ONNX Runtime on the CPU."""

    def __init__(self, path: str | Path, threads: int = 1):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def log_probs(self, keypoint_features: np.ndarray) -> np.ndarray:
        """[T, F] float32 -> [T // 4, C]."""
        x = np.asarray(keypoint_features, dtype=np.float32)[None]
        return self.session.run(["log_probs"], {"keypoints": x})[0][0]


def latency_ms(fn, inputs: list[np.ndarray], runs: int) -> dict[str, float]:
    """Mean and p95 milliseconds per video over `runs` passes of `inputs` (after one warm-up)."""
    fn(inputs[0])
    times: list[float] = []
    for r in range(runs):
        x = inputs[r % len(inputs)]
        start = time.perf_counter()
        fn(x)
        times.append((time.perf_counter() - start) * 1e3)
    return {"mean": float(np.mean(times)), "p95": float(np.percentile(times, 95))}


def onnx_hypotheses(runner: OnnxRecognizer, features: list[np.ndarray], glosses: list[str], method: str, beam_width: int) -> list[list[str]]:
    """Decode every video's keypoint features with the exported model; glosses[i] is class i + 1."""
    from signkd.decode import decode

    return [[glosses[c - 1] for c in decode(runner.log_probs(x), method, beam_width)] for x in features]
