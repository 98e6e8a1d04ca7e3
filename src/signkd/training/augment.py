"""Training-time augmentation shared by every model: one random transform per video, applied
consistently to all its modalities so that they still describe the same signing.

* temporal speed change: frames resampled by a factor (faster or slower signing);
* spatial similarity transform (scale, rotation, shift) of the image: the RGB frames and the
  flow field are warped, and the flow vectors rotated and scaled with it; the keypoint
  features, which are shoulder-centred and shoulder-width-scaled, change only by the rotation
  (scale and shift cancel in their normalisation), so the landmarks stay consistent with the
  pixels.

Written here because the usual video-augmentation libraries transform images only, not
landmarks and flow vectors together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch

from signkd.models.blocks import DOWNSAMPLE
from signkd.training.data import Item, ctc_min_frames

# inputs a transform may touch; teacher targets (t_*) are left as they are
_SPATIAL_KEYS = ("video", "flow", "keypoints")


@dataclass(frozen=True)
class AugmentConfig:
    speed: float = 0.0  # max relative speed change (0.2: 0.8x-1.2x); 0 = off
    scale: float = 0.0  # max relative scale change; 0 = off
    rotate: float = 0.0  # max rotation in degrees; 0 = off
    shift: float = 0.0  # max shift as a fraction of the frame size; 0 = off

    @property
    def active(self) -> bool:
        return any(v > 0 for v in (self.speed, self.scale, self.rotate, self.shift))


@dataclass(frozen=True)
class AugmentDraw:
    """One video's random transform, drawn in the main process (so the random stream does not
    depend on how many DataLoader workers apply it) and applied in a worker."""

    speed: float | None = None  # resampling factor; None = keep the frame count
    scale: float | None = None  # None = no spatial transform
    angle: float = 0.0
    shift: tuple[float, float] = (0.0, 0.0)


def draw_augment(cfg: AugmentConfig, rng: np.random.Generator, temporal: bool = True) -> AugmentDraw:
    """The random numbers of one video's transform, in a fixed order (speed, scale, angle, shift)."""
    speed = rng.uniform(1 - cfg.speed, 1 + cfg.speed) if temporal and cfg.speed > 0 else None
    if cfg.scale > 0 or cfg.rotate > 0 or cfg.shift > 0:
        scale = rng.uniform(1 - cfg.scale, 1 + cfg.scale)
        angle = rng.uniform(-cfg.rotate, cfg.rotate)
        shift = rng.uniform(-cfg.shift, cfg.shift, size=2)
        return AugmentDraw(speed, float(scale), float(angle), (float(shift[0]), float(shift[1])))
    return AugmentDraw(speed)


def apply_augment(item: Item, draw: AugmentDraw) -> Item:
    """A transformed copy of an item whose inputs are in memory (the original is untouched)."""
    tensors = dict(item.tensors)
    if draw.speed is not None:
        tensors = _resample(tensors, item, draw.speed)
    if draw.scale is not None:
        tensors = _similarity(tensors, draw.scale, draw.angle, np.array(draw.shift))
    return replace(item, tensors=tensors)


def augment_item(item: Item, cfg: AugmentConfig, rng: np.random.Generator, temporal: bool = True) -> Item:
    """A transformed copy of `item` (the original is untouched). `temporal=False` keeps the
    frame count, for items whose precomputed teacher outputs are aligned to their frames."""
    return apply_augment(item, draw_augment(cfg, rng, temporal))


def _resample(tensors: dict[str, torch.Tensor], item: Item, factor: float) -> dict[str, torch.Tensor]:
    t = item.num_frames
    new_t = int(round(t / factor))
    if new_t // DOWNSAMPLE < ctc_min_frames(item.labels) or new_t < DOWNSAMPLE:
        return tensors  # too fast for CTC to align: keep the original speed
    index = torch.from_numpy(np.linspace(0, t - 1, new_t).round().astype(np.int64))
    return {k: (v.index_select(0, index) if k in _SPATIAL_KEYS else v) for k, v in tensors.items()}


def _affine(h: int, w: int, scale: float, angle: float, shift: np.ndarray) -> np.ndarray:
    matrix: np.ndarray = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, scale)
    matrix[:, 2] += shift * np.array([w, h])
    return matrix


def _warp(frames: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """[T, C, H, W] -> the same, each channel warped (edges replicated, as a camera sees more)."""
    t, c, h, w = frames.shape
    planes = frames.reshape(t * c, h, w)
    out = np.stack([cv2.warpAffine(p, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) for p in planes])
    return out.reshape(t, c, h, w)


def _similarity(tensors: dict[str, torch.Tensor], scale: float, angle: float, shift: np.ndarray) -> dict[str, torch.Tensor]:
    out = dict(tensors)
    # cv2's angle is counter-clockwise in image coordinates (y down); the same rotation of a
    # vector (x, y) in those coordinates is [[c, s], [-s, c]]
    rad = math.radians(angle)
    c, s = math.cos(rad), math.sin(rad)
    if "video" in tensors:
        v = tensors["video"].numpy()
        out["video"] = torch.from_numpy(_warp(v, _affine(v.shape[2], v.shape[3], scale, angle, shift)))
    if "flow" in tensors:
        f = tensors["flow"].numpy()
        warped = _warp(f, _affine(f.shape[2], f.shape[3], scale, angle, shift))
        fx, fy = warped[:, 0], warped[:, 1]
        out["flow"] = torch.from_numpy(np.stack([scale * (c * fx + s * fy), scale * (-s * fx + c * fy)], axis=1).astype(np.float32))
    if "keypoints" in tensors:
        kp = tensors["keypoints"].clone()
        joints = kp.shape[1] // 3
        xy = kp[:, : 2 * joints].view(-1, joints, 2)
        x, y = xy[..., 0].clone(), xy[..., 1].clone()
        xy[..., 0], xy[..., 1] = c * x + s * y, -s * x + c * y  # unseen joints are 0 and stay 0
        out["keypoints"] = kp
    return out
