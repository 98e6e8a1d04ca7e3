import numpy as np
import pytest
import torch

from signkd.inference import DecodeConfig, OnnxBackend, TorchBackend, transcribe
from signkd.models.recognizer import KeypointStudent
from signkd.quantize import export_onnx, latency_ms_per_100_frames, quantize_int8, read_config
from signkd.training.data import collate
from signkd.training.trainer import set_seed
from tests.toy_data import GLOSSES, toy_items


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    set_seed(0)
    model = KeypointStudent(12, 64, len(GLOSSES) + 1).eval()
    items = toy_items(10, seed=4)
    config = {"vocab": GLOSSES, "preprocessing": {"max_gap": 3}}
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
    slow = latency_ms_per_100_frames(lambda x: torch.ones(200, 200) @ torch.ones(200, 200), [0], frames=[100], runs=3)
    fast_per_frame = latency_ms_per_100_frames(lambda x: torch.ones(200, 200) @ torch.ones(200, 200), [0], frames=[1000], runs=3)
    assert fast_per_frame < slow
