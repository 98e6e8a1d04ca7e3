"""Recognise one video on the CPU: MediaPipe -> the exported student -> decoder -> correction.

The features are built by the same functions the pipeline trains on (`keypoint_features`,
`collate`), with the settings stored in the exported model (keypoint parts, gap filling,
decoding), and the glosses come from the project's one inference path (`signkd.inference`).
"""

from __future__ import annotations

from signkd.errors import InputError
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from signkd.inference import DecodeConfig, OnnxBackend, glosses_from_log_probs
from signkd.models.blocks import DOWNSAMPLE
from signkd.quantize import read_config

DEFAULT_MODEL = Path("models/quantize/student_int8.onnx")
MIN_HAND_FRAMES = 0.1  # below this share of frames with a detected hand, nobody is signing


class RecognizeError(InputError, RuntimeError):
    """The video cannot be recognised; the message says why in one line."""


@dataclass
class Recognition:
    video: str
    frames: int
    fps: float
    glosses: list[str]
    corrected: list[str]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def real_time_factor(self) -> float:
        """Processing seconds per second of video (< 1: faster than real time)."""
        return sum(self.timings.values()) / (self.frames / self.fps)


def video_fps(source: Path, default: float = 25.0) -> float:
    """The video file's own frame rate; frame folders carry none, so Phoenix's 25 fps is assumed."""
    if source.is_dir():
        return default
    import cv2

    cap = cv2.VideoCapture(str(source))
    fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    cap.release()
    return float(fps) if fps and np.isfinite(fps) and fps > 0 else default


def load_deployable(model_path: Path) -> tuple[OnnxBackend, dict]:
    if not model_path.is_file():
        raise RecognizeError(f"model {model_path} not found: run `make repro` (or `dvc repro quantize`) first, or pass --model")
    config = read_config(model_path)
    if config is None or "vocab" not in config:
        raise RecognizeError(f"{model_path} carries no SignKD config (vocabulary, preprocessing): re-export it with `dvc repro quantize`")
    return OnnxBackend(model_path), config


def recognize(
    video: str | Path, model_path: str | Path = DEFAULT_MODEL, *, decoding: DecodeConfig | None = None,
    corrector_dir: str | Path | None = None, fps: float | None = None,
) -> Recognition:
    from signkd.features.keypoints import keypoints_for_video
    from signkd.training.data import Item, keypoint_features

    video = Path(video)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    backend, config = load_deployable(Path(model_path))
    prep = config["preprocessing"]
    timings["load"] = time.perf_counter() - start
    if not video.exists():
        raise RecognizeError(f"{video} does not exist: give a video file (.mp4, .avi, .webm) or a folder of frame images")

    start = time.perf_counter()
    arrays = keypoints_for_video(video, max_gap=int(prep["max_gap"]))
    timings["keypoints"] = time.perf_counter() - start
    frames = int(len(arrays["mask"]))
    if frames // DOWNSAMPLE < 1:
        raise RecognizeError(f"{video}: too short ({frames} frames); the model needs at least {DOWNSAMPLE}")
    if _hand_share(arrays) < MIN_HAND_FRAMES:
        raise RecognizeError(f"{video}: no signing detected (hands found in {_hand_share(arrays):.0%} of {frames} frames)")

    start = time.perf_counter()
    features = keypoint_features(arrays, tuple(prep["keypoint_parts"]))
    item = Item(video.name, (), [], {"keypoints": torch.from_numpy(features)})
    decoding = decoding or DecodeConfig(prep["decode_method"], int(prep["beam_width"]))
    hyp = glosses_from_log_probs(backend.run(item), config["vocab"], decoding)
    timings["model"] = time.perf_counter() - start

    corrected = hyp
    if corrector_dir is not None:
        start = time.perf_counter()
        from signkd.correction import GlossCorrector

        corrected = GlossCorrector.load(corrector_dir).correct([hyp])[0]
        timings["correction"] = time.perf_counter() - start
    return Recognition(str(video), frames, fps or video_fps(video), hyp, corrected, timings)


def _hand_share(arrays: dict[str, np.ndarray]) -> float:
    from signkd.features.keypoints import PARTS

    mask = np.asarray(arrays["mask"], bool)
    hands = np.concatenate([mask[:, PARTS[p]] for p in ("left_hand", "right_hand")], axis=1)
    return float(hands.any(axis=1).mean()) if len(mask) else 0.0
