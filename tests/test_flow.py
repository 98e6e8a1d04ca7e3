"""Optical flow: known motion is recovered, int8 storage is faithful, extraction is deterministic."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from signkd.data.manifest import Sample
from signkd.features import flow as fl
from signkd.features.parallel import FINGERPRINT_KEYS, ExtractionError, run_per_video
from signkd.io import load_npz


def _texture(seed: int = 0) -> np.ndarray:
    noise = (np.random.default_rng(seed).random((220, 220)) * 255).astype(np.uint8)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2)
    return cv2.normalize(smooth, None, 0, 255, cv2.NORM_MINMAX)


def _translating(dx: int, dy: int, frames: int, height: int = 96, width: int = 80, seed: int = 0):
    """Content moving by (dx, dy) pixels per frame: a window sliding by (-dx, -dy) over a texture."""
    texture = _texture(seed)
    top, left = 60, 60
    for t in range(frames):
        y, x = top - dy * t, left - dx * t
        gray = texture[y:y + height, x:x + width]
        yield cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)


def _interior_mean(flow: np.ndarray, scale: float) -> np.ndarray:
    """Mean (dx, dy) over moving frames, away from borders where content enters and leaves."""
    field = fl.dequantize_flow(flow, scale)[1:, :, 2:-2, 2:-2]
    return field.mean(axis=(0, 2, 3))


@pytest.mark.parametrize("method", ["dis", "farneback"])
@pytest.mark.parametrize("shift", [(2, -1), (-3, 0)])
def test_translation_is_recovered(method, shift):
    flow, scale = fl.compute_flow(_translating(*shift, frames=4), method, height=12, width=10)
    np.testing.assert_allclose(_interior_mean(flow, scale), shift, atol=0.3)


def test_tvl1_recovers_translation():
    flow, scale = fl.compute_flow(_translating(1, 2, frames=2, height=48, width=40), "tvl1", height=6, width=5)
    np.testing.assert_allclose(_interior_mean(flow, scale)[:2], (1, 2), atol=0.3)


def test_shape_dtype_and_first_frame():
    flow, scale = fl.compute_flow(_translating(2, 1, frames=5), height=16, width=13)
    assert flow.shape == (5, 2, 16, 13) and flow.dtype == np.int8
    assert isinstance(scale, float) and scale > 0
    assert not flow[0].any() and np.abs(flow).max() == 127


def test_still_video_has_zero_flow_and_unit_scale():
    still = [np.full((30, 20, 3), 90, np.uint8)] * 3
    flow, scale = fl.compute_flow(still, "dis", height=6, width=4)
    assert not flow.any() and scale == 1.0


def test_quantisation_round_trip_error_is_half_a_step():
    fields = np.random.default_rng(1).normal(0, 3, (4, 2, 8, 6)).astype(np.float32)
    quantized, scale = fl.quantize_flow(fields)
    error = np.abs(fl.dequantize_flow(quantized, scale) - fields).max()
    assert error <= scale / 2 + 1e-6 and error < 0.02 * np.abs(fields).max()


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="unknown flow method 'raft'"):
        fl.compute_flow(_translating(1, 1, 2), "raft", height=4, width=4)
    with pytest.raises(ValueError, match="height must be an integer >= 1"):
        fl.compute_flow(_translating(1, 1, 2), height=0, width=4)
    with pytest.raises(ValueError, match="no frames"):
        fl.compute_flow([], height=4, width=4)
    mixed = [np.zeros((20, 10, 3), np.uint8), np.zeros((10, 20, 3), np.uint8)]
    with pytest.raises(ValueError, match="frame 1 is 20x10 but earlier frames are 10x20"):
        fl.compute_flow(mixed, height=4, width=4)


def _video_folder(root, name: str, shift, frames: int = 4, seed: int = 0):
    folder = root / name
    folder.mkdir()
    for index, frame in enumerate(_translating(*shift, frames=frames, seed=seed)):
        cv2.imwrite(str(folder / f"{index:03d}.png"), frame)
    return Sample(id=name, split="train", frames_dir=str(folder), signer="s1", num_frames=frames,
                  glosses=("NORD",))


def test_extract_flow_is_identical_for_one_and_two_workers(tmp_path):
    samples = [_video_folder(tmp_path, f"v{i}", (i + 1, 0), seed=i) for i in range(3)]
    one = fl.extract_flow(samples, tmp_path / "w1", height=8, width=6, workers=1, progress=False)
    two = fl.extract_flow(samples, tmp_path / "w2", height=8, width=6, workers=2, progress=False)
    for sample in samples:
        a, b = load_npz(tmp_path / "w1" / f"{sample.id}.npz"), load_npz(tmp_path / "w2" / f"{sample.id}.npz")
        assert a.keys() == b.keys() == {"flow", "scale", "method", *FINGERPRINT_KEYS}
        assert all(np.array_equal(a[k], b[k]) for k in a)
        assert a["scale"].dtype == np.float32 and a["scale"].shape == ()
    assert one["frames"] == two["frames"] == 12 and one["processed"] == 3
    assert one["mean_abs_flow"] == two["mean_abs_flow"]
    # 9 of 12 frames move by 1, 2 or 3 px: mean magnitude ~ (1 + 2 + 3) * 3 / 12 = 1.5
    assert one["mean_abs_flow"] == pytest.approx(1.5, abs=0.25)
    assert fl.load_flow(tmp_path / "w1" / "v0.npz").shape == (4, 2, 8, 6)


def test_cache_made_with_other_settings_is_recomputed(tmp_path):
    samples = [_video_folder(tmp_path, "v", (1, 1))]
    fl.extract_flow(samples, tmp_path / "out", method="dis", height=8, width=6, workers=1, progress=False)
    again = fl.extract_flow(samples, tmp_path / "out", method="dis", height=8, width=6, workers=1, progress=False)
    assert (again["cached"], again["processed"], again["frames"]) == (1, 0, 4)
    other = fl.extract_flow(samples, tmp_path / "out", method="farneback", height=8, width=6, workers=1,
                            progress=False)
    assert other["processed"] == 1
    assert str(load_npz(tmp_path / "out" / "v.npz")["method"]) == "farneback"


def test_corrupt_frame_fails_or_is_skipped(tmp_path):
    samples = [_video_folder(tmp_path, "good", (1, 0)), _video_folder(tmp_path, "bad", (1, 0))]
    (tmp_path / "bad" / "002.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ExtractionError, match=r"flow \(dis\) failed for video 'bad' \(.*bad\).*002\.png"):
        fl.extract_flow(samples, tmp_path / "out", height=8, width=6, workers=2, progress=False)
    stats = fl.extract_flow(samples, tmp_path / "out", height=8, width=6, workers=1, on_error="skip",
                            progress=False)
    assert stats["skipped_videos"][0]["id"] == "bad" and "002.png" in stats["skipped_videos"][0]["reason"]
    # 'good' may have finished beside the failure in the first run; then it is kept, not redone
    assert stats["processed"] + stats["cached"] == 1 and not (tmp_path / "out" / "bad.npz").exists()


def _die_on_b(source):
    if source.name == "b":
        os._exit(3)  # what an out-of-memory kill looks like to the pool
    return {"x": np.zeros(1)}


def _no_summary(arrays):
    return {}


def test_dead_worker_is_reported_not_waited_for(tmp_path):
    samples = [Sample(id=n, split="train", frames_dir=str(tmp_path / n), signer="s", num_frames=1, glosses=())
               for n in "ab"]
    with pytest.raises(ExtractionError, match="worker process died.*re-running resumes"):
        run_per_video(samples, tmp_path / "out", _die_on_b, _no_summary, workers=2, progress=False)
