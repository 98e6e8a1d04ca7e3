"""Deployable student: ONNX export with a dynamic time axis, int8 quantisation, latency.

Dynamic int8 quantisation (weights int8, activations quantised on the fly) suits a small
LSTM/linear model on CPU: no calibration set is needed and the size drops about 4x. The model's
checkpoint config (vocabulary, preprocessing, decoding) is stored in the ONNX file's metadata,
so a deployed file is self-describing: `recognize` needs nothing else.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from torch import nn

from signkd.io import atomic_path

CONFIG_KEY = "signkd_config"


class _SeqLogProbs(nn.Module):
    """One unpadded utterance [1, T, ...] -> sequence-head log-probabilities [1, T // 4, C]."""

    def __init__(self, model: nn.Module, input_name: str):
        super().__init__()
        self.model = model
        self.input_name = input_name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the length from tensor ops (not a Python int) keeps the time axis dynamic in the graph
        lengths = torch.ones_like(x.flatten(2)[:, :, 0]).sum(1).long()
        out = self.model({self.input_name: x, "lengths": lengths})
        return out.seq_logits.log_softmax(-1)


def model_input(model: nn.Module) -> str:
    """The single input modality of a deployable (single-modal) recogniser."""
    modalities = getattr(model, "modalities", ())
    if len(modalities) != 1:
        raise ValueError(f"only single-modal students are exported, this model reads {list(modalities)}")
    return modalities[0]


def export_onnx(model: nn.Module, example: torch.Tensor, path: str | Path, config: dict | None = None) -> Path:
    """Export with a dynamic frame axis (any video length); `example` is one utterance [1, T, ...]."""
    model.eval()
    name = model_input(model)
    with atomic_path(path) as tmp:
        torch.onnx.export(
            _SeqLogProbs(model, name).eval(), (example,), str(tmp), input_names=[name], output_names=["log_probs"],
            dynamic_axes={name: {1: "frames"}, "log_probs": {1: "steps"}}, opset_version=17, dynamo=False,
        )
        if config is not None:
            _write_config(tmp, config)
        onnx.checker.check_model(str(tmp))
    return Path(path)


def quantize_int8(fp32_path: str | Path, int8_path: str | Path) -> Path:
    with atomic_path(int8_path) as tmp:
        quantize_dynamic(str(fp32_path), str(tmp), weight_type=QuantType.QInt8)
        config = read_config(fp32_path)
        if config is not None:
            _write_config(tmp, config)
        onnx.checker.check_model(str(tmp))
    return Path(int8_path)


def _write_config(path: str | Path, config: dict) -> None:
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = CONFIG_KEY, json.dumps(config, ensure_ascii=False)
    onnx.save(proto, str(path))


def read_config(path: str | Path) -> dict | None:
    """The checkpoint config stored in an exported model, or None for a foreign ONNX file."""
    proto = onnx.load(str(path), load_external_data=False)
    for entry in proto.metadata_props:
        if entry.key == CONFIG_KEY:
            return json.loads(entry.value)
    return None


def latency_ms_per_100_frames(fn, inputs: list, frames: list[int], runs: int) -> float:
    """Median milliseconds per 100 input frames over `runs` timed passes (after a warm-up pass)."""
    for x in inputs[: min(3, len(inputs))]:
        fn(x)
    per_100: list[float] = []
    for r in range(runs):
        i = r % len(inputs)
        start = time.perf_counter()
        fn(inputs[i])
        per_100.append((time.perf_counter() - start) * 1e3 * 100.0 / max(frames[i], 1))
    return float(np.median(per_100))
