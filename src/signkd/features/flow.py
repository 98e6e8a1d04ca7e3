"""Dense optical flow per video, computed at full resolution and stored small as int8.

Flow is computed on the original frames (downscaling first would erase the small finger and
wrist motions that distinguish movement minimal pairs), then area-averaged to the model's input
size and quantised with one scale per video: a 210x260 video of 100 frames shrinks from
~44 MB of float32 flow to ~170 kB at 32x26 before compression.

Stored per video (`{id}.npz`): `flow` int8 [T, 2, height, width] (channel 0 = dx, 1 = dy; the
first frame's flow is zero so T matches the video), `scale` float32 0-d (flow in pixels of the
original frame = flow * scale), `method` (the algorithm's name), and the cache keys of
`signkd.features.cache` (the frames' sha1 and `extractor_settings`) that let an interrupted or
changed extraction redo only what it must.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Iterable

import cv2
import numpy as np

from signkd.data.manifest import Sample
from signkd.features.frames import iter_frames
from signkd.features.parallel import run_per_video
from signkd.io import load_npz

FLOW_METHODS = ("dis", "farneback", "tvl1")
# Bump when the arrays written for the same frames and settings change: every cached video is then
# computed again. The algorithms' own parameters are in `_METHOD_PARAMS`, part of the cache key.
EXTRACTOR_VERSION = 2
_FARNEBACK = {"pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3, "poly_n": 5, "poly_sigma": 1.2,
              "flags": 0}
_METHOD_PARAMS = {"dis": {"preset": "fast"}, "farneback": _FARNEBACK, "tvl1": {"defaults": True}}

FlowFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _flow_function(method: str) -> FlowFn:
    """A (prev_gray, next_gray) -> float32 [H, W, 2] function; one instance per video."""
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)  # type: ignore[attr-defined]  # in cv2, not in its stubs
        return lambda prev, nxt: dis.calc(prev, nxt, None)
    if method == "farneback":
        # the stubs want an array for `flow` (cv2 takes None: allocate it) and cannot match **_FARNEBACK
        return lambda prev, nxt: cv2.calcOpticalFlowFarneback(prev, nxt, None, **_FARNEBACK)  # type: ignore[call-overload]
    if method == "tvl1":
        tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()  # type: ignore[attr-defined]  # opencv-contrib, not in the stubs
        return lambda prev, nxt: tvl1.calc(prev, nxt, None)
    raise ValueError(f"unknown flow method {method!r}: choose one of {', '.join(FLOW_METHODS)}")


def _check_size(height: int, width: int) -> None:
    for name, value in (("height", height), ("width", width)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"flow {name} must be an integer >= 1, got {value!r}")


def quantize_flow(fields: np.ndarray) -> tuple[np.ndarray, float]:
    """float flow -> (int8 flow, scale) with flow ~= int8 * scale; the peak maps to +-127."""
    peak = float(np.abs(fields).max()) if fields.size else 0.0
    scale = np.float32(peak / 127.0) if peak > 0 else np.float32(1.0)
    quantized = np.clip(np.rint(fields / scale), -127, 127).astype(np.int8)
    return quantized, float(scale)


def dequantize_flow(flow: np.ndarray, scale: float | np.ndarray) -> np.ndarray:
    """int8 flow and its scale -> float32 flow in pixels of the original frame."""
    return flow.astype(np.float32) * np.float32(scale)


def compute_flow(
    frames: Iterable[np.ndarray], method: str = "dis", *, height: int, width: int
) -> tuple[np.ndarray, float]:
    """Frames (BGR or gray) -> (int8 flow [T, 2, height, width], scale); see the module docstring.

    Streams: holds two frames plus the small resized output, whatever the video's length.
    """
    _check_size(height, width)
    flow_fn = _flow_function(method)
    fields: list[np.ndarray] = []
    prev = None
    for index, frame in enumerate(frames):
        gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if prev is None:
            fields.append(np.zeros((2, height, width), np.float32))
        else:
            if gray.shape != prev.shape:
                raise ValueError(f"frame {index} is {gray.shape[1]}x{gray.shape[0]} but earlier frames are "
                                 f"{prev.shape[1]}x{prev.shape[0]}: all frames of a video must share one size")
            full = flow_fn(prev, gray)
            small = cv2.resize(full, (width, height), interpolation=cv2.INTER_AREA)
            fields.append(small.transpose(2, 0, 1).astype(np.float32))
        prev = gray
    if not fields:
        raise ValueError("compute_flow got no frames")
    return quantize_flow(np.stack(fields))


def flow_for_video(source: str | Path, *, method: str, height: int, width: int) -> dict[str, np.ndarray]:
    """Arrays stored for one video (flow, scale, method)."""
    flow, scale = compute_flow(iter_frames(source), method, height=height, width=width)
    return {"flow": flow, "scale": np.asarray(scale, np.float32), "method": np.asarray(method)}


def load_flow(path: str | Path) -> np.ndarray:
    """Read one extracted video as float32 [T, 2, height, width] flow in original-frame pixels."""
    arrays = load_npz(path)
    return dequantize_flow(arrays["flow"], arrays["scale"])


def _summarize_flow(arrays: dict[str, np.ndarray], *, method: str, height: int, width: int) -> dict:
    """Frame count and summed mean magnitude; raises ValueError for other settings' output."""
    flow = arrays["flow"]
    if flow.dtype != np.int8 or flow.ndim != 4 or flow.shape[1:] != (2, height, width):
        raise ValueError(f"stored flow {flow.dtype} {flow.shape} does not match int8 [T, 2, {height}, {width}]")
    if arrays["scale"].shape != () or str(arrays["method"]) != method:
        raise ValueError(f"stored flow was made with method {str(arrays['method'])!r}, not {method!r}")
    magnitude = np.hypot(*dequantize_flow(flow, arrays["scale"]).transpose(1, 0, 2, 3))
    return {"frames": int(flow.shape[0]), "magnitude_sum": float(magnitude.mean(axis=(1, 2)).sum())}


def extractor_settings(*, method: str, height: int, width: int) -> dict:
    """Everything that decides the stored arrays besides the frames: the cache key of every output."""
    return {"extractor": "opencv_flow", "format": EXTRACTOR_VERSION, "opencv": cv2.__version__, "method": method,
            "method_params": _METHOD_PARAMS[method], "height": height, "width": width}


def extract_flow(
    samples: list[Sample],
    out_dir: str | Path,
    *,
    method: str = "dis",
    height: int,
    width: int,
    workers: int,
    on_error: str = "fail",
    progress: bool = True,
) -> dict:
    """Write `out_dir/{id}.npz` per video and return stats. Resumes: a video's output made from the
    same frames under the same `extractor_settings` is kept, any other is computed again.

    Stats: videos / processed / cached / skipped (with reasons), frames, frames_per_second of this
    run's processing, mean_abs_flow (mean per-pixel flow magnitude in original-frame pixels).
    """
    _flow_function(method)  # a bad method fails here, before any worker starts
    _check_size(height, width)
    settings: dict[str, Any] = {"method": method, "height": height, "width": width}
    report = run_per_video(samples, out_dir, functools.partial(flow_for_video, **settings),
                           functools.partial(_summarize_flow, **settings), settings=extractor_settings(**settings),
                           workers=workers, on_error=on_error, progress=progress, desc=f"flow ({method})")
    frames = sum(r.summary["frames"] for r in report.done)
    processed_frames = sum(r.summary["frames"] for r in report.with_status("processed"))
    magnitude = sum(r.summary["magnitude_sum"] for r in report.done)
    return report.base_stats() | {
        "method": method,
        "frames": frames,
        "frames_per_second": round(processed_frames / report.seconds, 2) if report.seconds > 0 else 0.0,
        "mean_abs_flow": round(magnitude / frames, 4) if frames else 0.0,
    }
