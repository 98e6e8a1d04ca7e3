"""Extracted keypoints drawn over the video: an animated GIF for the reports, a full video for
`signkd recognize --overlay` (with the running gloss caption), to see at a glance what was found.

Numbers (detection rate, PCK) say how often and how far extraction is off; a picture shows how:
a hand labelled with the wrong side, a skeleton lagging behind a fast movement, fingers
collapsed into a fist. Detected joints are drawn in colour per part (hollow where the joint was
interpolated across a short gap), the renderer's ground truth, when given, on top in thin magenta.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from signkd.features.accuracy import to_pixels
from signkd.features.frames import iter_frames
from signkd.features.keypoints import FACE, LEFT_HAND, POSE, POSE_NAMES, RIGHT_HAND
from signkd.io import _publish_mode, atomic_path, load_npz

HAND_BONES = ((0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11),
              (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20))
POSE_BONES = tuple((POSE_NAMES.index(a), POSE_NAMES.index(b)) for a, b in (
    ("left_shoulder", "right_shoulder"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"), ("left_shoulder", "left_hip"),
    ("right_shoulder", "right_hip"), ("left_hip", "right_hip")))
# BGR: the signer's left hand green, right hand orange (the two must never be confused)
COLOURS = {"pose": (255, 200, 0), "left_hand": (60, 220, 60), "right_hand": (0, 140, 255), "face": (0, 230, 230)}
GT_COLOUR = (255, 0, 255)
_SHIFT = 4  # fixed-point bits: sub-pixel drawing


class _Painter:
    """Draws points given in source-frame pixels (centres at integers) onto an upscaled frame."""

    def __init__(self, image: np.ndarray, scale: int):
        self.image, self.scale = image, scale

    def _pt(self, p) -> tuple[int, int]:
        x, y = ((np.asarray(p, np.float64) + 0.5) * self.scale - 0.5) * (1 << _SHIFT)
        return int(round(x)), int(round(y))

    def line(self, a, b, colour, width: int = 1) -> None:
        cv2.line(self.image, self._pt(a), self._pt(b), colour, width, cv2.LINE_AA, _SHIFT)

    def dot(self, p, colour, radius: float, filled: bool = True) -> None:
        cv2.circle(self.image, self._pt(p), int(round(radius * (1 << _SHIFT))), colour,
                   -1 if filled else 1, cv2.LINE_AA, _SHIFT)


def _draw_part(painter: _Painter, points: np.ndarray, shown: np.ndarray, hollow: np.ndarray,
               bones, colour, radius: float) -> None:
    for a, b in bones:
        if shown[a] and shown[b]:
            painter.line(points[a], points[b], colour, 1 if hollow[a] or hollow[b] else 2)
    for j in np.flatnonzero(shown):
        painter.dot(points[j], colour, radius, filled=not hollow[j])


def _draw_ground_truth(painter: _Painter, gt: dict, t: int) -> None:
    from signkd.data.render import POSE_NAMES as GT_POSE_NAMES

    for h in range(gt["hand_joints"].shape[1]):
        joints, visible = gt["hand_joints"][t, h], gt["hand_joint_visible"][t, h]
        for a, b in HAND_BONES:
            if visible[a] and visible[b]:
                painter.line(joints[a], joints[b], GT_COLOUR, 1)
    pose = np.stack([gt["pose_joints"][t, GT_POSE_NAMES.index(n)] for n in POSE_NAMES])
    seen = np.array([gt["pose_visible"][t, GT_POSE_NAMES.index(n)] for n in POSE_NAMES])
    for a, b in POSE_BONES:
        if seen[a] and seen[b]:
            painter.line(pose[a], pose[b], GT_COLOUR, 1)


def _draw_frame(frame: np.ndarray, t: int, kp: dict, gt: dict | None, scale: int) -> np.ndarray:
    image = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    painter = _Painter(image, scale)
    points = to_pixels(kp["landmarks"][t], kp["frame_size"])
    mask = kp["mask"][t].astype(bool)
    hollow = kp.get("interpolated", np.zeros_like(kp["mask"]))[t].astype(bool) & ~mask
    shown = mask | hollow
    for name, part, bones, radius in (("pose", POSE, POSE_BONES, 1.6), ("face", FACE, (), 0.8),
                                      ("left_hand", LEFT_HAND, HAND_BONES, 1.0),
                                      ("right_hand", RIGHT_HAND, HAND_BONES, 1.0)):
        _draw_part(painter, points[part], shown[part], hollow[part], bones, COLOURS[name], radius)
    if gt is not None:
        _draw_ground_truth(painter, gt, t)
    cv2.putText(image, f"frame {t}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return image


def write_overlay_gif(
    frames_dir: str | Path,
    keypoints_npz: str | Path,
    out_path: str | Path,
    *,
    ground_truth_npz: str | Path | None = None,
    max_frames: int = 24,
    scale: int = 2,
    frame_ms: int = 160,
) -> int:
    """Draw the keypoints (and ground truth) on up to `max_frames` frames spread evenly over the
    video, `scale` times enlarged, and write them as a looping GIF atomically; returns the count."""
    if max_frames < 1 or scale < 1:
        raise ValueError(f"max_frames and scale must be >= 1, got {max_frames} and {scale}")
    kp = load_npz(keypoints_npz)
    gt = load_npz(ground_truth_npz) if ground_truth_npz is not None else None
    total = len(kp["mask"])
    if total == 0:
        raise ValueError(f"{keypoints_npz} holds no frames")
    chosen = set(np.linspace(0, total - 1, min(max_frames, total)).round().astype(int).tolist())
    images = []
    for t, frame in enumerate(iter_frames(frames_dir)):
        if t >= total:
            raise ValueError(f"{frames_dir} has more frames than the {total} in {keypoints_npz}")
        if t in chosen:
            images.append(cv2.cvtColor(_draw_frame(frame, t, kp, gt, scale), cv2.COLOR_BGR2RGB))
    if len(images) != len(chosen):
        raise ValueError(f"{frames_dir} has fewer frames than the {total} in {keypoints_npz}")

    import imageio.v3 as iio

    with atomic_path(out_path) as tmp:
        iio.imwrite(tmp, np.stack(images), extension=".gif", duration=frame_ms, loop=0)
    return len(images)


def _caption(image: np.ndarray, text: str) -> None:
    """A dark bar along the bottom with the newest glosses that fit (older ones scroll off)."""
    height, width = image.shape[:2]
    scale = max(0.4, width / 640)
    thickness = max(1, round(scale * 1.5))
    words = text.split()
    while words and cv2.getTextSize(" ".join(words), cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0] > width - 8:
        words = words[1:]
    (_, text_h), base = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    top = height - text_h - base - 8
    image[top:] = (image[top:] * 0.35).astype(np.uint8)
    cv2.putText(image, " ".join(words), (4, height - base - 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                thickness, cv2.LINE_AA)


# suffix -> the codec OpenCV's bundled FFmpeg writes for it; browsers play only the .webm (VP8)
OVERLAY_CODECS = {".mp4": "mp4v", ".avi": "MJPG", ".webm": "VP80"}


def write_overlay_video(source: str | Path, keypoints: dict, out_path: str | Path, captions: list[str],
                        fps: float) -> int:
    """Every frame of `source` with its landmarks and `captions[t]` (the running gloss caption),
    written atomically as .mp4 (mp4v), .avi (MJPG) or .webm (VP8, what a browser plays); small frames (Phoenix's 210 x 260) are
    enlarged 2x so that the caption stays readable. Returns the number of frames written."""
    out_path = Path(out_path)
    fourcc = OVERLAY_CODECS.get(out_path.suffix.lower())
    if fourcc is None:
        raise ValueError(f"overlay video {out_path} must end in {', '.join(OVERLAY_CODECS)}")
    total = len(keypoints["mask"])
    if len(captions) != total:
        raise ValueError(f"{len(captions)} captions for {total} frames")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # VideoWriter picks the container from the suffix, so the temporary file keeps it
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out_path.stem}.", suffix=out_path.suffix, dir=out_path.parent)
    os.close(fd)
    tmp, writer, count = Path(tmp_name), None, 0
    try:
        for t, frame in enumerate(iter_frames(source)):
            if t >= total:
                raise ValueError(f"{source} has more frames than the {total} with keypoints")
            scale = 2 if frame.shape[1] < 400 else 1
            image = _draw_frame(frame, t, keypoints, None, scale)
            _caption(image, captions[t])
            if writer is None:
                # the stubs know only VideoWriter.fourcc; cv2 has both
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), float(fps), image.shape[1::-1])  # type: ignore[attr-defined]
                if not writer.isOpened():
                    raise OSError(f"OpenCV cannot write {out_path.suffix} video ({fourcc}) here")
            writer.write(image)
            count += 1
        if count != total:
            raise ValueError(f"{source} has fewer frames than the {total} with keypoints")
        if writer is None:
            raise ValueError(f"{source} has no frames to draw")
        writer.release()
        writer = None
        _publish_mode(tmp, directory=False)
        os.replace(tmp, out_path)
    finally:
        if writer is not None:
            writer.release()
        if tmp.exists():
            tmp.unlink()
    return count
