import numpy as np
import torch

from signkd.models.recognizer import KeypointStudent
from signkd.quantize import OnnxRecognizer, export_onnx, latency_ms, quantize_int8
from signkd.training.trainer import set_seed


def test_int8_onnx_is_smaller_and_close_to_torch_for_any_length(tmp_path):
    set_seed(0)
    model = KeypointStudent(30, 64, 8).eval()
    fp32 = export_onnx(model, 30, tmp_path / "s.onnx")
    int8 = quantize_int8(fp32, tmp_path / "s_int8.onnx")
    assert not model.training, "export must leave the model in eval mode"
    assert int8.stat().st_size < 0.5 * fp32.stat().st_size
    runners = OnnxRecognizer(fp32), OnnxRecognizer(int8)
    for frames in (9, 48, 73):
        x = np.random.default_rng(frames).normal(size=(frames, 30)).astype(np.float32)
        with torch.no_grad():
            ref = model({"keypoints": torch.from_numpy(x)[None], "lengths": torch.tensor([frames])}).seq_logits
            ref = ref.log_softmax(-1)[0].numpy()
        assert runners[0].log_probs(x).shape == ref.shape == (frames // 4, 8)
        np.testing.assert_allclose(runners[0].log_probs(x), ref, atol=1e-4)
        assert np.abs(runners[1].log_probs(x) - ref).max() < 0.1


def test_latency_reports_mean_and_p95():
    out = latency_ms(lambda x: sum(range(1000)), [None], runs=5)
    assert 0 < out["mean"] <= out["p95"] + 1e-9
