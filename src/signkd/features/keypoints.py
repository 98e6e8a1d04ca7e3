"""MediaPipe Holistic landmarks per frame, with a per-joint mask, and the normalisation models use.

The joint set keeps what carries sign information: the upper body (where the hands are relative
to the body), both hands in full (handshape), and a small face subset (mouthing and eyebrows, the
non-manual markers). Left and right are the signer's own, as MediaPipe names them.

Stored per video (`{id}.npz`): `landmarks` float32 [T, J, 3] (x, y in [0, 1] image-normalised
coordinates — a tracked joint may lie slightly outside — and MediaPipe's relative depth z),
`mask` bool [T, J] (True where the joint was detected), and `frame_size` int32 [2] (height, width)
so that normalisation can undo the image's aspect ratio. Undetected joints are zeros, never NaN.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from signkd.data.manifest import Sample
from signkd.features.frames import iter_frames
from signkd.features.parallel import run_per_video
from signkd.io import load_npz

# MediaPipe Pose indices: nose, shoulders, elbows, wrists, hips.
POSE_INDICES = (0, 11, 12, 13, 14, 15, 16, 23, 24)
POSE_NAMES = ("nose", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
              "left_wrist", "right_wrist", "left_hip", "right_hip")

HAND_NAMES = ("wrist", "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
              "index_mcp", "index_pip", "index_dip", "index_tip",
              "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
              "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
              "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip")

# Face-mesh indices (468-point mesh): every other point of the outer lip contour, both corners and
# both centres included (mouthing), and the upper row of each eyebrow (raised/furrowed brows).
LIPS_INDICES = (61, 185, 39, 0, 269, 409, 291, 321, 405, 17, 181, 91)
LEFT_BROW_INDICES = (300, 293, 334, 296, 336)
RIGHT_BROW_INDICES = (70, 63, 105, 66, 107)
FACE_INDICES = LIPS_INDICES + LEFT_BROW_INDICES + RIGHT_BROW_INDICES
FACE_NAMES = (tuple(f"lips_{i}" for i in LIPS_INDICES)
              + tuple(f"left_brow_{i}" for i in LEFT_BROW_INDICES)
              + tuple(f"right_brow_{i}" for i in RIGHT_BROW_INDICES))

JOINT_NAMES = (tuple(f"pose_{n}" for n in POSE_NAMES)
               + tuple(f"left_hand_{n}" for n in HAND_NAMES)
               + tuple(f"right_hand_{n}" for n in HAND_NAMES)
               + tuple(f"face_{n}" for n in FACE_NAMES))
NUM_JOINTS = len(JOINT_NAMES)  # 9 + 21 + 21 + 22 = 73

POSE = slice(0, len(POSE_INDICES))
LEFT_HAND = slice(POSE.stop, POSE.stop + 21)
RIGHT_HAND = slice(LEFT_HAND.stop, LEFT_HAND.stop + 21)
FACE = slice(RIGHT_HAND.stop, RIGHT_HAND.stop + len(FACE_INDICES))
PARTS = {"pose": POSE, "left_hand": LEFT_HAND, "right_hand": RIGHT_HAND, "face": FACE}

LEFT_SHOULDER = POSE.start + POSE_NAMES.index("left_shoulder")
RIGHT_SHOULDER = POSE.start + POSE_NAMES.index("right_shoulder")

# Pose always returns all 33 joints, guessing the ones out of view; below this visibility
# (MediaPipe's own score) a joint counts as not detected.
POSE_VISIBILITY_MIN = 0.5


def _import_mediapipe():
    """Imported on first use: training code reads keypoints without paying for MediaPipe."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    import mediapipe as mp

    return mp


class KeypointExtractor:
    """MediaPipe Holistic over one video at a time (tracking state must not leak across videos)."""

    def __init__(self, min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5):
        self.min_detection_confidence = min_detection_confidence
        self.min_tracking_confidence = min_tracking_confidence

    def extract(self, frames: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """BGR frames -> landmarks float32 [T, J, 3] and mask bool [T, J]; see the module docstring."""
        mp = _import_mediapipe()
        # model_complexity=1 is the only Holistic variant bundled with mediapipe 0.10.21;
        # 0 and 2 try to download their models at start-up, which fails offline.
        holistic = mp.solutions.holistic.Holistic(
            static_image_mode=False,
            model_complexity=1,
            smooth_landmarks=True,
            refine_face_landmarks=False,
            min_detection_confidence=self.min_detection_confidence,
            min_tracking_confidence=self.min_tracking_confidence,
        )
        landmarks, masks = [], []
        try:
            for frame in frames:
                rgb = np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                points, mask = _frame_landmarks(holistic.process(rgb))
                landmarks.append(points)
                masks.append(mask)
        finally:
            holistic.close()
        if not landmarks:
            return np.zeros((0, NUM_JOINTS, 3), np.float32), np.zeros((0, NUM_JOINTS), bool)
        return np.stack(landmarks), np.stack(masks)


def _frame_landmarks(result) -> tuple[np.ndarray, np.ndarray]:
    points = np.zeros((NUM_JOINTS, 3), np.float32)
    mask = np.zeros(NUM_JOINTS, bool)
    if result.pose_landmarks is not None:
        pose = result.pose_landmarks.landmark
        for j, index in enumerate(POSE_INDICES, start=POSE.start):
            lm = pose[index]
            if lm.visibility >= POSE_VISIBILITY_MIN:
                points[j] = (lm.x, lm.y, lm.z)
                mask[j] = True
    for part, found in ((LEFT_HAND, result.left_hand_landmarks), (RIGHT_HAND, result.right_hand_landmarks)):
        if found is not None:
            points[part] = [(lm.x, lm.y, lm.z) for lm in found.landmark]
            mask[part] = True
    if result.face_landmarks is not None:
        face = result.face_landmarks.landmark
        points[FACE] = [(face[i].x, face[i].y, face[i].z) for i in FACE_INDICES]
        mask[FACE] = True
    # MediaPipe does not emit NaN today; the contract "never NaN" should not depend on that.
    bad = ~np.isfinite(points).all(axis=1)
    points[bad] = 0.0
    mask[bad] = False
    return points, mask


def normalize_keypoints(landmarks: np.ndarray, mask: np.ndarray, *, aspect: float = 1.0) -> np.ndarray:
    """Shoulder-centred, shoulder-width-scaled x, y: float32 [T, J, 2], masked joints zero.

    Removes where the signer stands and how large they appear, which differ between signers
    and cameras but carry no meaning. One centre and scale per video (medians over the frames
    where both shoulders are detected), so missed frames do not jitter it; a video with no
    shoulders at all falls back to image coordinates centred on the image. `aspect` is the
    frame's width / height, so x and y are scaled in the same pixel units.
    """
    landmarks = np.asarray(landmarks, np.float32)
    mask = np.asarray(mask, bool)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (NUM_JOINTS, 3) or mask.shape != landmarks.shape[:2]:
        raise ValueError(f"expected landmarks [T, {NUM_JOINTS}, 3] and mask [T, {NUM_JOINTS}], "
                         f"got {landmarks.shape} and {mask.shape}")
    xy = landmarks[..., :2].copy()
    xy[..., 0] *= aspect
    both = mask[:, LEFT_SHOULDER] & mask[:, RIGHT_SHOULDER]
    centre = np.array([0.5 * aspect, 0.5], np.float32)
    scale = np.float32(1.0)
    if both.any():
        left, right = xy[both, LEFT_SHOULDER], xy[both, RIGHT_SHOULDER]
        width = float(np.median(np.linalg.norm(left - right, axis=1)))
        if width > 1e-6:
            centre = np.median((left + right) / 2, axis=0).astype(np.float32)
            scale = np.float32(width)
    out = (xy - centre) / scale
    out[~mask] = 0.0
    return out.astype(np.float32)


def load_keypoints(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one extracted video: normalised x, y [T, J, 2] and mask [T, J], ready for a model."""
    arrays = load_npz(path)
    height, width = (int(v) for v in arrays["frame_size"])
    xy = normalize_keypoints(arrays["landmarks"], arrays["mask"], aspect=width / height)
    return xy, arrays["mask"].astype(bool)


def _frames_recording_size(source: Path, size: list) -> Iterator[np.ndarray]:
    for frame in iter_frames(source):
        if not size:
            size.extend(frame.shape[:2])
        yield frame


def keypoints_for_video(source: str | Path) -> dict[str, np.ndarray]:
    """Arrays stored for one video (landmarks, mask, frame_size); also what `recognize` runs."""
    size: list[int] = []
    landmarks, mask = KeypointExtractor().extract(_frames_recording_size(Path(source), size))
    return {"landmarks": landmarks, "mask": mask, "frame_size": np.asarray(size, np.int32)}


def _summarize_keypoints(arrays: dict[str, np.ndarray]) -> dict:
    """Frame count and per-part detected-frame counts; raises ValueError for a foreign joint set."""
    landmarks, mask = arrays["landmarks"], arrays["mask"]
    if landmarks.ndim != 3 or landmarks.shape[1:] != (NUM_JOINTS, 3) or mask.shape != landmarks.shape[:2]:
        raise ValueError(f"stored landmarks {landmarks.shape} do not match the joint set ({NUM_JOINTS} joints)")
    if arrays["frame_size"].shape != (2,):
        raise ValueError("stored frame_size is not (height, width)")
    detected = {name: int(mask[:, part].any(axis=1).sum()) for name, part in PARTS.items()}
    return {"frames": int(landmarks.shape[0]), "detected": detected}


def _rates(summaries: list[dict]) -> dict:
    frames = sum(s["frames"] for s in summaries)
    rates = {name: round(sum(s["detected"][name] for s in summaries) / frames, 4) if frames else 0.0
             for name in PARTS}
    return {"frames": frames, "detection_rate": rates}


def extract_keypoints(
    samples: list[Sample],
    out_dir: str | Path,
    *,
    workers: int,
    on_error: str = "fail",
    progress: bool = True,
) -> dict:
    """Write `out_dir/{id}.npz` per video (resuming: finished videos are kept) and return stats.

    Stats: videos / processed / cached / skipped (with reasons), frames, detection_rate per part
    (fraction of frames with that part detected, over all videos with output), per_split rates
    when samples come from several splits, and frames_per_second of this run's processing.
    """
    report = run_per_video(samples, out_dir, keypoints_for_video, _summarize_keypoints,
                           workers=workers, on_error=on_error, progress=progress, desc="keypoints")
    stats = report.base_stats() | _rates([r.summary for r in report.done])
    processed_frames = sum(r.summary["frames"] for r in report.with_status("processed"))
    stats["frames_per_second"] = round(processed_frames / report.seconds, 2) if report.seconds > 0 else 0.0
    splits = sorted({r.split for r in report.done})
    if len(splits) > 1:
        stats["per_split"] = {}
        for split in splits:
            summaries = [r.summary for r in report.done if r.split == split]
            stats["per_split"][split] = {"videos": len(summaries)} | _rates(summaries)
    return stats

