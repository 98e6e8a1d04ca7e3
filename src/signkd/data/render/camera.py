"""What the camera does to the drawn scene: exposure, interlacing, optics, sensor, compression.

Broadcast sign-language video is shot at 25 fps with a shutter open for most of a frame, often
interlaced, and stored with lossy compression. Fast hands therefore smear along their path and
lose the finger detail a hand detector relies on, while the smear itself still shows the movement
(what optical flow and a video model see). The exposure is simulated, not faked with a blur kernel:
the moving parts are drawn at several instants within the shutter time and averaged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from signkd.data.render.skeleton import REFERENCE_HEIGHT, REFERENCE_WIDTH


@dataclass(frozen=True)
class RenderParams:
    """Image size and the camera degradations applied to every video."""

    height: int = REFERENCE_HEIGHT
    width: int = REFERENCE_WIDTH
    jitter_px: float = 1.5  # camera shake amplitude (reference pixels)
    blur_sigma: tuple[float, float] = (0.4, 1.0)  # per-video Gaussian (focus) blur range
    noise_sigma: tuple[float, float] = (0.5, 1.5)  # per-video pixel noise range (grey levels)
    occlusion_prob: float = 0.15  # chance that a video contains one brief hand occlusion by a card
    supersample: int = 2  # draw at this multiple and downscale, for smooth edges
    exposure: float = 1.0  # shutter time in frames; 0 = instantaneous (no motion blur)
    blur_step_px: float = 3.0  # exposure instants lie at most this far apart along a hand's path (output px)
    max_substeps: int = 8  # at most this many instants per frame
    interlace_prob: float = 0.5  # chance that a video is interlaced: odd rows half an exposure after even rows
    jpeg_quality: tuple[int, int] = (25, 55)  # per-video JPEG quality range; (0, 0) = no compression

    def __post_init__(self) -> None:
        if self.height < 64 or self.width < 48:
            raise ValueError(f"frame size {self.height}x{self.width} is too small (need >= 64x48)")
        if not 0.0 <= self.occlusion_prob <= 1.0:
            raise ValueError(f"occlusion_prob must be in [0, 1], got {self.occlusion_prob}")
        if not 0.0 <= self.interlace_prob <= 1.0:
            raise ValueError(f"interlace_prob must be in [0, 1], got {self.interlace_prob}")
        if self.supersample not in (1, 2, 3, 4):
            raise ValueError(f"supersample must be 1..4, got {self.supersample}")
        if not 0.0 <= self.exposure <= 1.0:
            raise ValueError(f"exposure must be in [0, 1] frames, got {self.exposure}")
        if self.blur_step_px <= 0 or not 1 <= self.max_substeps <= 64:
            raise ValueError("blur_step_px must be > 0 and max_substeps in 1..64")
        lo, hi = self.jpeg_quality
        if (lo, hi) != (0, 0) and not 1 <= lo <= hi <= 100:
            raise ValueError(f"jpeg_quality must be (0, 0) or 1 <= low <= high <= 100, got {self.jpeg_quality}")


def smooth_noise(rng: np.random.Generator, n: int, dims: int, amplitude: float) -> np.ndarray:
    """A slowly drifting random walk, low-pass filtered (camera shake, body sway)."""
    raw = rng.normal(0.0, 1.0, size=(n + 6, dims))
    kernel = np.ones(5) / 5
    smooth = np.stack([np.convolve(raw[:, d], kernel, mode="same") for d in range(dims)], axis=1)[3 : n + 3]
    return smooth * amplitude / max(float(smooth.std()), 1e-6)


def exposure_instants(travel_px: float, params: RenderParams, interlaced: bool) -> list[float]:
    """Times (in frames, relative to the frame's centre) at which the moving parts are drawn.

    `travel_px` is how far the fastest joint moves during the exposure; instants are spaced so
    that consecutive copies are at most `blur_step_px` apart and the smear looks continuous. An
    interlaced frame gets an even count: its first half makes the even rows, its second the odd.
    """
    if params.exposure <= 0:
        return [0.0]
    k = int(min(params.max_substeps, max(1, math.ceil(travel_px / params.blur_step_px))))
    if interlaced and k > 1:
        k += k % 2
    return [params.exposure * ((i + 0.5) / k - 0.5) for i in range(k)]


def interlace(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """A frame woven from two fields: even rows from the first, odd rows from the second."""
    out = first.copy()
    out[1::2] = second[1::2]
    return out


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """A JPEG round trip (8x8 DCT blocks, 4:2:0 chroma), as broadcast and web video is stored."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


@dataclass(frozen=True)
class Sensor:
    """Per-video optics and sensor settings, drawn once per video."""

    blur: float
    noise: float
    jpeg_quality: int  # 0 = none
    interlaced: bool

    @classmethod
    def draw(cls, rng: np.random.Generator, params: RenderParams) -> "Sensor":
        blur = float(rng.uniform(*params.blur_sigma))
        noise = float(rng.uniform(*params.noise_sigma))
        lo, hi = params.jpeg_quality
        quality = int(rng.integers(lo, hi + 1)) if hi > 0 else 0
        return cls(blur, noise, quality, bool(rng.random() < params.interlace_prob))

    def finish(self, image: np.ndarray, noise: np.ndarray | None) -> np.ndarray:
        """Focus blur, then sensor noise (saturating), then compression."""
        if self.blur > 0:
            image = cv2.GaussianBlur(image, (0, 0), self.blur)
        if noise is not None:
            image = cv2.add(image, noise, dtype=cv2.CV_8U)
        if self.jpeg_quality:
            image = jpeg(image, self.jpeg_quality)
        return image
