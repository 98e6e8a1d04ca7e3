"""Model inputs as NumPy arrays, built without importing torch.

`signkd recognize` runs the exported student under ONNX Runtime. Importing torch would cost it
about 2.5 s of CPU per call, a quarter of a 10 s video's real-time budget on one core, so the
functions that turn stored features into model inputs live here, in NumPy. Training's `collate`
(training/data.py) wraps the same `pad_inputs` in tensors: one path for training and deployment.
"""

from __future__ import annotations

from typing import Mapping, Protocol, Sequence

import numpy as np

from signkd.features.keypoints import PARTS, filled_mask, normalize_keypoints

DOWNSAMPLE = 4  # input frames per output step of every recogniser: two max-pools of 2 (models/blocks.py)
ALL_PARTS = tuple(PARTS)
INPUTS = ("keypoints", "video", "flow")  # frame-rate inputs; any other tensor (teacher outputs) is shorter


class Shaped(Protocol):
    """A NumPy array or a torch tensor, as far as `num_frames` needs."""

    @property
    def shape(self) -> tuple[int, ...]: ...


def keypoint_features(arrays: Mapping[str, np.ndarray], parts: tuple[str, ...] = ALL_PARTS) -> np.ndarray:
    """Stored keypoints of one video -> [T, 3J'] model input over the chosen body parts
    (`model.keypoint_parts`; KD-MSLRT uses arms, hands and lips): shoulder-normalised x, y (zero
    where unseen) and the visibility mask. The `recognize` command uses the same function."""
    unknown = set(parts) - set(PARTS)
    if unknown or not parts:
        raise ValueError(f"keypoint parts must be a non-empty subset of {list(PARTS)}, got {list(parts)}")
    height, width = (int(v) for v in arrays["frame_size"])
    mask = filled_mask(arrays)  # detections plus short interpolated gaps
    xy = normalize_keypoints(arrays["landmarks"], mask, aspect=width / height)
    joints = np.concatenate([np.arange(PARTS[p].start, PARTS[p].stop) for p in parts])
    xy, mask = xy[:, joints], mask[:, joints]
    t = xy.shape[0]
    return np.concatenate([xy.reshape(t, -1), mask.reshape(t, -1).astype(np.float32)], axis=1).astype(np.float32)


def num_frames(tensors: Mapping[str, Shaped], name: str = "?") -> int:
    """Input frames of one sample (every input modality has the same count)."""
    for key in INPUTS:
        if key in tensors:
            return int(tensors[key].shape[0])
    raise ValueError(f"sample {name} has no input modality loaded")


def model_scale(key: str, x: np.ndarray) -> np.ndarray:
    """Model input scale: video uint8 -> [-0.5, 0.5] float32; everything else as stored, float32."""
    if key == "video":
        return x.astype(np.float32) / np.float32(255.0) - np.float32(0.5)
    return x.astype(np.float32, copy=False)


def pad_inputs(samples: Sequence[Mapping[str, np.ndarray]], *, video_uint8: bool = False) -> dict[str, np.ndarray]:
    """Each key's arrays zero-padded to the longest in the batch ([B, T_max, ...] float32, padding
    stays 0 after scaling), plus `lengths` (input frames per sample). `video_uint8`: video stays
    uint8, unscaled (a quarter of the bytes between DataLoader workers, in pinned memory and over
    PCIe); `scale_video` on the device then gives exactly the float32 this function would."""
    batch: dict[str, np.ndarray] = {"lengths": np.array([num_frames(s) for s in samples], dtype=np.int64)}
    for key in samples[0]:
        t_max = max(s[key].shape[0] for s in samples)
        raw = video_uint8 and key == "video"
        padded = np.zeros((len(samples), t_max, *samples[0][key].shape[1:]), dtype=np.uint8 if raw else np.float32)
        for i, s in enumerate(samples):
            padded[i, : s[key].shape[0]] = np.asarray(s[key]) if raw else model_scale(key, np.asarray(s[key]))
        batch[key] = padded
    return batch


# model_scale of every uint8 value: scaling by lookup gives bit for bit what NumPy computes above
VIDEO_SCALE = model_scale("video", np.arange(256, dtype=np.uint8))
