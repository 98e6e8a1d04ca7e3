from pathlib import Path

import numpy as np
import pytest

from signkd.inference import DecodeConfig, OnnxBackend, TorchBackend, transcribe
from signkd.models.recognizer import KeypointStudent
from signkd.quantize import export_onnx, latency_ms_per_100_frames, quantize_int8, read_config
from signkd.training.data import collate
from signkd.training.trainer import set_seed
from tests.toy_data import GLOSSES, student_spec, toy_items


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    set_seed(0)
    model = KeypointStudent(12, 64, len(GLOSSES) + 1).eval()
    items = toy_items(10, seed=4)
    config = student_spec(GLOSSES, 12, 64, max_gap=3)
    out = tmp_path_factory.mktemp("onnx")
    fp32 = export_onnx(model, collate(items[:1])["keypoints"], out / "s.onnx", config)
    int8 = quantize_int8(fp32, out / "s_int8.onnx")
    return model, items, fp32, int8, config


def test_fp32_onnx_alone_equals_torch_in_padded_batches(exported):
    """The deployed path (ONNX, one unpadded utterance) and the training path (PyTorch, padded
    batches of mixed lengths) give the same log-probabilities for any length."""
    model, items, fp32, _, _ = exported
    assert len({it.num_frames for it in items}) > 3, "the test needs mixed lengths"
    torch_lp = TorchBackend(model, batch_size=5).log_probs(items)
    onnx_lp = OnnxBackend(fp32).log_probs(items)
    for it, a, b in zip(items, torch_lp, onnx_lp):
        assert a.shape == b.shape == (it.num_frames // 4, len(GLOSSES) + 1)
        np.testing.assert_allclose(b, a, atol=1e-4)
    decoding = DecodeConfig("beam", 5)
    assert transcribe(OnnxBackend(fp32), items, GLOSSES, decoding) == transcribe(TorchBackend(model), items, GLOSSES, decoding)


def test_int8_is_smaller_close_and_carries_the_config(exported):
    model, items, fp32, int8, config = exported
    assert not model.training, "export must leave the model in eval mode"
    assert int8.stat().st_size < 0.5 * fp32.stat().st_size
    assert read_config(int8) == read_config(fp32) == config
    diff = max(np.abs(a - b).max() for a, b in zip(OnnxBackend(fp32).log_probs(items), OnnxBackend(int8).log_probs(items)))
    assert 0 < diff < 0.1


def test_latency_is_the_median_per_100_frames():
    calls = []
    ms = latency_ms_per_100_frames(lambda x: calls.append(x), [1, 2], frames=[50, 200], runs=4)
    assert len(calls) == 2 + 4 and ms >= 0
    # a fake clock that advances 1 ms per call: each timed pass lasts exactly 1 ms, so a
    # 50-frame video costs 2 ms per 100 frames and a 200-frame one 0.5 ms; the median of
    # passes over [50, 200, 50, 200, 50] is 2 ms
    ticks = iter(i * 1e-3 for i in range(1000))
    fixed = latency_ms_per_100_frames(lambda x: None, [1, 2], frames=[50, 200], runs=5, clock=lambda: next(ticks))
    assert fixed == pytest.approx(2.0)


# --- int8 per operator: static (QDQ) / dynamic / fp32, and the plan search ----------------------

def _op_types(path) -> set[str]:
    import onnx

    return {n.op_type for n in onnx.load(str(path)).graph.node}


def test_a_plan_quantises_each_op_type_as_asked(exported, tmp_path):
    from signkd.quantize import QuantPlan

    model, items, fp32, _, config = exported
    calibration = [it.tensors["keypoints"].numpy() for it in items]
    with pytest.raises(ValueError, match="LSTM cannot be quantised 'static'"):
        QuantPlan(lstm="static")
    plan = QuantPlan(conv="static", matmul="static", lstm="dynamic")
    with pytest.raises(ValueError, match="calibration"):
        quantize_int8(fp32, tmp_path / "x.onnx", plan)
    mixed = quantize_int8(fp32, tmp_path / "mixed.onnx", plan, calibration)
    ops = _op_types(mixed)
    assert {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLSTM"} <= ops and "LSTM" not in ops
    assert "ConvInteger" not in ops and "MatMulInteger" not in ops  # no dynamic Conv / MatMul
    assert "ConvInteger" in _op_types(quantize_int8(fp32, tmp_path / "dyn.onnx"))  # the all-dynamic default
    conv_only = quantize_int8(fp32, tmp_path / "conv.onnx", QuantPlan.with_mode("Conv", "static"), calibration)
    assert "LSTM" in _op_types(conv_only) and "DynamicQuantizeLSTM" not in _op_types(conv_only)
    assert read_config(mixed) == config
    reference = OnnxBackend(fp32).log_probs(items)
    diff = max(np.abs(a - b).max() for a, b in zip(reference, OnnxBackend(mixed).log_probs(items)))
    assert 0 < diff < 0.2
    assert mixed.stat().st_size < 0.5 * fp32.stat().st_size


DYNAMIC_NAME = "conv-dynamic_matmul-dynamic_lstm-dynamic"


def _fake_latency(deltas: dict[tuple[str, str], float]):
    """Latency of a plan file named `<plan>.onnx`: 1.0 plus each quantised op type's delta."""

    def latency(path, inputs, runs):
        name = Path(path).stem
        if not name.startswith("conv-"):
            return 1.0  # the fp32 model
        modes = dict(part.split("-") for part in name.split("_"))
        return 1.0 + sum(deltas.get((op, m), 0.0) for op, m in modes.items())

    return latency


@pytest.mark.parametrize("lstm_dynamic, expected", [
    (0.05, "conv-static_matmul-dynamic_lstm-dynamic"),  # all int8 (0.70 ms) is no slower: smallest wins
    (0.40, "conv-static_matmul-dynamic_lstm-fp32"),  # all int8 (1.05 ms) would be slower than fp32
])
def test_search_keeps_the_smallest_plan_no_slower_than_fp32(exported, tmp_path, monkeypatch, lstm_dynamic, expected):
    import signkd.quantize as q

    _, items, fp32, _, _ = exported
    deltas = {("conv", "dynamic"): 0.5, ("conv", "static"): -0.3, ("matmul", "dynamic"): -0.05,
              ("matmul", "static"): 0.02, ("lstm", "dynamic"): lstm_dynamic}
    monkeypatch.setattr(q, "onnx_latency_ms", _fake_latency(deltas))
    calibration = [it.tensors["keypoints"].numpy() for it in items]
    plan, results, fp32_ms = q.search_plan(fp32, tmp_path, calibration, calibration[:2], runs=1, rounds=1)
    assert plan.name == expected and fp32_ms == 1.0
    assert results[plan.name].latency_ms <= fp32_ms
    fastest = min(results.values(), key=lambda r: r.latency_ms).plan.name
    assert fastest == "conv-static_matmul-dynamic_lstm-fp32"  # 0.65 ms: in the first case, size beats it
    assert {"conv-fp32_matmul-fp32_lstm-dynamic", "conv-static_matmul-fp32_lstm-fp32", DYNAMIC_NAME} <= set(results)


def test_calibration_reader_feeds_each_utterance_once_per_pass():
    from signkd.quantize import FeatureReader

    reader = FeatureReader("keypoints", [np.zeros((5, 3)), np.ones((7, 3))])
    shapes = [reader.get_next()["keypoints"].shape for _ in range(2)]
    assert shapes == [(1, 5, 3), (1, 7, 3)] and reader.get_next() is None
    reader.rewind()
    assert reader.get_next()["keypoints"].dtype == np.float32
