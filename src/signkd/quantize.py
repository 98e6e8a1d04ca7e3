"""Deployable student: ONNX export with a dynamic time axis, int8 quantisation, latency.

Exported models carry their spec (vocabulary, preprocessing, decoding, architecture; see
signkd.models.spec) in the ONNX metadata, so a deployed file is self-describing: `recognize` needs nothing else.

int8 is chosen per operator type, by measurement, because ONNX Runtime's int8 kernels are not
uniformly faster than fp32 on a CPU: its *dynamic* Conv (ConvInteger) quantises activations on
the fly and is 2-3x slower than the fp32 convolution (measured on AVX2), while *static* QDQ
Conv / MatMul (activation ranges calibrated once on training features) run as fused QLinear
kernels. LSTM has only a dynamic int8 kernel. A `QuantPlan` says, per op type, fp32, dynamic or
static; `search_plan` finds each op type's faster int8 mode, measures the combinations and
returns the smallest plan no slower than fp32 - the two goals of a deployed model, in that order.

TFLite (KD-MSLRT's format) comes through the optional `[tflite]` extra (LiteRT's PyTorch
converter): `export_tflite` writes an fp32 and a dynamic-int8 file and `TfliteBackend` runs them.
"""

from __future__ import annotations

import itertools
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence, cast

import numpy as np
import onnx
import torch
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static
from torch import nn

from signkd.inference import CONFIG_KEY, spec_from_metadata  # defined there so that deployment reads it without torch
from signkd.io import atomic_path
from signkd.models.spec import ModelSpec

OP_TYPES = ("Conv", "MatMul", "LSTM")  # the weight-carrying ops of the students (Linear exports as MatMul)
MODES = ("fp32", "dynamic", "static")
STATIC_OP_TYPES = ("Conv", "MatMul")  # ONNX Runtime has no static (QDQ) LSTM kernel


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
    modalities: Sequence[str] = getattr(model, "modalities", ())
    if len(modalities) != 1:
        raise ValueError(f"only single-modal students are exported, this model reads {list(modalities)}")
    return modalities[0]


def export_onnx(model: nn.Module, example: torch.Tensor, path: str | Path, config: ModelSpec | None = None,
                input_name: str | None = None) -> Path:
    """Export with a dynamic frame axis (any video length); `example` is one utterance [1, T, ...].
    `input_name` serves models outside the project's recognisers (the KD-MSLRT-sized reference)."""
    model.eval()
    name = input_name or model_input(model)
    wrapped = _SeqLogProbs(model, name) if input_name is None else model
    with atomic_path(path) as tmp:
        torch.onnx.export(
            wrapped.eval(), (example,), str(tmp), input_names=[name], output_names=["log_probs"],
            dynamic_axes={name: {1: "frames"}, "log_probs": {1: "steps"}}, opset_version=17, dynamo=False,
        )
        if config is not None:
            _write_config(tmp, config)
        onnx.checker.check_model(str(tmp))
    return Path(path)


@dataclass(frozen=True)
class QuantPlan:
    """How each weight-carrying op type is stored and run: fp32, dynamic int8 or static int8 (QDQ)."""

    conv: str = "dynamic"
    matmul: str = "dynamic"
    lstm: str = "dynamic"

    def __post_init__(self):
        for op, mode in self.modes().items():
            if mode not in MODES or (mode == "static" and op not in STATIC_OP_TYPES):
                raise ValueError(f"{op} cannot be quantised {mode!r}; options: "
                                 f"{[m for m in MODES if m != 'static' or op in STATIC_OP_TYPES]}")

    def modes(self) -> dict[str, str]:
        return {"Conv": self.conv, "MatMul": self.matmul, "LSTM": self.lstm}

    def ops(self, mode: str) -> list[str]:
        return [op for op, m in self.modes().items() if m == mode]

    @property
    def name(self) -> str:
        return "_".join(f"{op.lower()}-{m}" for op, m in self.modes().items())

    @classmethod
    def with_mode(cls, op: str, mode: str) -> "QuantPlan":
        """Only `op` quantised (as `mode`), everything else fp32: one op type's effect alone."""
        modes = {"conv": "fp32", "matmul": "fp32", "lstm": "fp32"}
        modes[op.lower()] = mode
        return cls(**modes)


DYNAMIC_ALL = QuantPlan()  # ONNX Runtime's default dynamic quantisation of every supported op


class FeatureReader(CalibrationDataReader):
    """Calibration inputs for static quantisation: one utterance [1, T, F] at a time."""

    def __init__(self, input_name: str, arrays: Iterable[np.ndarray]):
        self.input_name = input_name
        self.arrays = [np.asarray(a, np.float32)[None] if np.ndim(a) == 2 else np.asarray(a, np.float32) for a in arrays]
        self._next = iter(self.arrays)

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._next, None)
        return None if x is None else {self.input_name: x}

    def rewind(self) -> None:
        self._next = iter(self.arrays)


def quantize_int8(fp32_path: str | Path, int8_path: str | Path, plan: QuantPlan = DYNAMIC_ALL,
                  calibration: Sequence[np.ndarray] | None = None) -> Path:
    """int8 model of `fp32_path` under `plan`; static op types need `calibration` (model inputs
    [T, F], from training data: their activation ranges are fixed by it)."""
    static, dynamic = plan.ops("static"), plan.ops("dynamic")
    if static and not calibration:
        raise ValueError(f"static quantisation of {static} needs calibration inputs")
    with tempfile.TemporaryDirectory() as work, atomic_path(int8_path) as tmp:
        current = Path(fp32_path)
        if static:
            out = Path(work) / "static.onnx"
            name = onnx.load(str(current), load_external_data=False).graph.input[0].name
            # per-channel weights: one scale per output channel keeps small channels accurate;
            # uint8 activations x int8 weights is the layout ONNX Runtime's x86 kernels run fastest
            # calibration: checked above, given whenever static ops are
            quantize_static(str(current), str(out), FeatureReader(name, cast(Sequence[np.ndarray], calibration)),
                            quant_format=QuantFormat.QDQ, op_types_to_quantize=static, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
            current = out
        if dynamic:
            out = Path(work) / "dynamic.onnx"
            quantize_dynamic(str(current), str(out), weight_type=QuantType.QInt8, op_types_to_quantize=dynamic)
            current = out
        proto = onnx.load(str(current))
        config = read_config(fp32_path)
        if config is not None:
            _set_config(proto, config)
        onnx.save(proto, str(tmp))
        onnx.checker.check_model(str(tmp))
    return Path(int8_path)


def _set_config(proto: onnx.ModelProto, spec: ModelSpec) -> None:
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = CONFIG_KEY, json.dumps(spec.to_json(), ensure_ascii=False)


def _write_config(path: str | Path, spec: ModelSpec) -> None:
    proto = onnx.load(str(path))
    _set_config(proto, spec)
    onnx.save(proto, str(path))


def read_config(path: str | Path) -> ModelSpec | None:
    """The spec stored in an exported model (an older format migrated), or None for a foreign ONNX file."""
    proto = onnx.load(str(path), load_external_data=False)
    for entry in proto.metadata_props:
        if entry.key == CONFIG_KEY:
            return spec_from_metadata(entry.value, str(path))
    return None


def latency_ms_per_100_frames(fn, inputs: list, frames: list[int], runs: int,
                              clock: Callable[[], float] = time.perf_counter) -> float:
    """Median milliseconds per 100 input frames over `runs` timed passes (after a warm-up pass).

    `clock=time.thread_time` times a single-threaded runtime by the CPU time of its thread, which
    a neighbouring process on the same core does not inflate (the pipeline shares 2 cores)."""
    for x in inputs[: min(3, len(inputs))]:
        fn(x)
    per_100: list[float] = []
    for r in range(runs):
        i = r % len(inputs)
        start = clock()
        fn(inputs[i])
        per_100.append((clock() - start) * 1e3 * 100.0 / max(frames[i], 1))
    return float(np.median(per_100))


def onnx_session(path: str | Path, threads: int = 1):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def onnx_latency_ms(path: str | Path, inputs: Sequence[np.ndarray], runs: int) -> float:
    """1-thread ONNX Runtime latency per 100 frames of raw inputs [T, F] (thread CPU time)."""
    session = onnx_session(path)
    name = session.get_inputs()[0].name
    feeds = [{name: np.asarray(x, np.float32)[None]} for x in inputs]
    return latency_ms_per_100_frames(lambda f: session.run(None, f), feeds, [len(x) for x in inputs], runs,
                                     clock=time.thread_time)


def size_mb(path: str | Path) -> float:
    return Path(path).stat().st_size / 2**20


@dataclass
class PlanResult:
    plan: QuantPlan
    path: Path
    size_mb: float
    latency_ms: float


def measure_plan(fp32_path: Path, plan: QuantPlan, out_dir: Path, calibration, timing, runs: int) -> PlanResult:
    path = quantize_int8(fp32_path, out_dir / f"{plan.name}.onnx", plan, calibration)
    return PlanResult(plan, path, size_mb(path), onnx_latency_ms(path, timing, runs))


def _remeasure(results: list[PlanResult], fp32_path: Path, timing, runs: int, rounds: int) -> float:
    """Best-of-`rounds` latency for every plan and fp32, re-measured in interleaved order, so a
    burst of load from a neighbouring process cannot decide a choice; returns fp32's."""
    fp32 = onnx_latency_ms(fp32_path, timing, runs)
    for _ in range(rounds - 1):
        fp32 = min(fp32, onnx_latency_ms(fp32_path, timing, runs))
        for r in results:
            r.latency_ms = min(r.latency_ms, onnx_latency_ms(r.path, timing, runs))
    return fp32


def search_plan(fp32_path: str | Path, out_dir: str | Path, calibration: Sequence[np.ndarray],
                timing: Sequence[np.ndarray], runs: int, rounds: int = 3) -> tuple[QuantPlan, dict[str, PlanResult], float]:
    """The smallest plan that is no slower than fp32 (else the fastest).

    First each op type's int8 modes are timed alone (everything else fp32) and the faster mode
    is kept per op type; then every combination of "that mode or fp32" per op type is measured
    as a whole (ops interact: a static Conv feeds quantised activations on). Returns the plan,
    every measured plan by name (the single-op ones, ONNX Runtime's all-dynamic default and the
    combinations) and the fp32 latency."""
    fp32_path, out_dir = Path(fp32_path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    present = [op for op in OP_TYPES if op in {n.op_type for n in onnx.load(str(fp32_path), load_external_data=False).graph.node}]
    singles = [QuantPlan.with_mode(op, mode) for op in present
               for mode in ("dynamic", "static") if mode != "static" or op in STATIC_OP_TYPES]
    results = {p.name: measure_plan(fp32_path, p, out_dir, calibration, timing, runs) for p in singles + [DYNAMIC_ALL]}
    _remeasure(list(results.values()), fp32_path, timing, runs, rounds)
    fastest = {op: min((r for r in results.values() if r.plan in singles and r.plan.modes()[op] != "fp32"),
                       key=lambda r: r.latency_ms).plan.modes()[op] for op in present}
    combos = [QuantPlan(**({"conv": "fp32", "matmul": "fp32", "lstm": "fp32"} | {op.lower(): m for op, m in zip(present, modes)}))
              for modes in itertools.product(*[(fastest[op], "fp32") for op in present])]
    new = [p for p in combos if p.name not in results]
    results |= {p.name: measure_plan(fp32_path, p, out_dir, calibration, timing, runs) for p in new}
    fp32 = _remeasure(list(results.values()), fp32_path, timing, runs, rounds)
    candidates = [results[p.name] for p in combos if p.ops("dynamic") or p.ops("static")]
    fit = [r for r in candidates if r.latency_ms <= fp32]
    best = min(fit, key=lambda r: (r.size_mb, r.latency_ms)) if fit else min(candidates, key=lambda r: r.latency_ms)
    return best.plan, results, fp32


TFLITE_WINDOW = 512  # frames per TFLite call (20 s at 25 fps); shorter inputs are zero-padded


class _PaddedSeqLogProbs(nn.Module):
    """(frames [1, W, F] zero-padded, valid length [1]) -> log-probabilities [1, W // 4, C].

    LiteRT's converter specialises the time axis to the example's, so the TFLite model reads a
    fixed window plus the valid length; the students are padding-independent, so the valid steps
    are the unpadded utterance's."""

    def __init__(self, model: nn.Module, input_name: str):
        super().__init__()
        self.model, self.input_name = model, input_name

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.model({self.input_name: x, "lengths": lengths.long()}).seq_logits.log_softmax(-1)


def export_tflite(model: nn.Module, feature_dim: int, fp32_path: str | Path, int8_path: str | Path,
                  window: int = TFLITE_WINDOW) -> tuple[Path, Path]:
    """fp32 and int8 (int8 weights, float activations: LiteRT's dynamic recipe) TFLite files.
    Needs the `[tflite]` extra (litert-torch)."""
    import litert_torch
    from ai_edge_quantizer import quantizer, recipe

    model.eval()
    example = (torch.zeros(1, window, feature_dim), torch.tensor([window], dtype=torch.int32))
    edge = litert_torch.convert(_PaddedSeqLogProbs(model, model_input(model)).eval(), example)
    with atomic_path(fp32_path) as tmp:
        edge.export(str(tmp))
    with atomic_path(int8_path) as tmp:
        quantizer.Quantizer(str(fp32_path), recipe.dynamic_wi8_afp32()).quantize().export_model(str(tmp), overwrite=True)
    return Path(fp32_path), Path(int8_path)


class TfliteBackend:
    """A TFLite recogniser (from `export_tflite`) under LiteRT, one utterance at a time."""

    def __init__(self, path: str | Path, threads: int = 1, input_name: str = "keypoints"):
        from ai_edge_litert.interpreter import Interpreter

        self.path, self.input_name = Path(path), input_name
        interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.runner = interpreter.get_signature_runner()
        self.frames_arg, self.length_arg = interpreter.get_signature_list()["serving_default"]["inputs"]
        self.window, self.feature_dim = (int(v) for v in interpreter.get_input_details()[0]["shape"][1:3])

    def run_array(self, x: np.ndarray) -> np.ndarray:
        """[T, F] -> [T // 4, C]."""
        t = len(x)
        if t > self.window:
            raise ValueError(f"{t} frames exceed the TFLite model's window of {self.window}")
        padded = np.zeros((1, self.window, self.feature_dim), np.float32)
        padded[0, :t] = x
        out = self.runner(**{self.frames_arg: padded, self.length_arg: np.array([t], np.int32)})
        return next(iter(out.values()))[0, : t // 4]

    def log_probs(self, items) -> list[np.ndarray]:
        from signkd.training.data import collate

        return [self.run_array(collate([it])[self.input_name][0].numpy()) for it in items]
