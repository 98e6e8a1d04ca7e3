"""TFLite export through the optional `[tflite]` extra (LiteRT's PyTorch converter): the fp32
file gives the PyTorch hypotheses, the int8 one is smaller and close. Skipped without the extra."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("litert_torch", reason="the [tflite] extra (litert-torch) is not installed")

from signkd.inference import DecodeConfig, TorchBackend, transcribe  # noqa: E402
from signkd.models.recognizer import KeypointStudent  # noqa: E402
from signkd.quantize import TfliteBackend, export_tflite  # noqa: E402
from signkd.training.trainer import set_seed  # noqa: E402
from tests.toy_data import GLOSSES, toy_items  # noqa: E402


def _int8_weight_elements(path) -> int:
    """Elements of the int8 matrices (quantised weights) in a TFLite file."""
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_path=str(path)).get_tensor_details()
    return sum(int(np.prod(t["shape"])) for t in details if len(t["shape"]) >= 2 and t["dtype"] == np.int8)


def test_tflite_fp32_matches_torch_and_int8_is_smaller_and_close(tmp_path):
    set_seed(0)
    model = KeypointStudent(12, 64, len(GLOSSES) + 1).eval()
    items = toy_items(6, seed=4)
    window = 128
    assert max(it.num_frames for it in items) <= window and len({it.num_frames for it in items}) > 2
    fp32, int8 = export_tflite(model, 12, tmp_path / "s.tflite", tmp_path / "s_int8.tflite", window=window)
    torch_lp = TorchBackend(model).log_probs(items)
    fp32_lp = TfliteBackend(fp32).log_probs(items)
    int8_lp = TfliteBackend(int8).log_probs(items)
    for it, a, b, c in zip(items, torch_lp, fp32_lp, int8_lp):
        assert b.shape == a.shape == (it.num_frames // 4, len(GLOSSES) + 1)
        np.testing.assert_allclose(b, a, atol=1e-4)  # padding to the window changes nothing
        assert 0 < np.abs(c - a).max() < 0.1
    decoding = DecodeConfig("greedy", 1)
    assert transcribe(TfliteBackend(fp32), items, GLOSSES, decoding) == transcribe(TorchBackend(model), items, GLOSSES, decoding)
    # LiteRT unrolls the LSTMs over the window, so the graph, not the weights, dominates a small
    # model's file: the check is that (nearly) every weight matrix became int8 and the file shrank
    assert int8.stat().st_size < fp32.stat().st_size
    deployed = sum(p.numel() for n, p in model.named_parameters() if p.ndim >= 2 and "conv_head" not in n)
    assert _int8_weight_elements(fp32) == 0 and _int8_weight_elements(int8) >= 0.9 * deployed
    with pytest.raises(ValueError, match="window"):
        TfliteBackend(fp32).run_array(np.zeros((window + 1, 12), np.float32))
