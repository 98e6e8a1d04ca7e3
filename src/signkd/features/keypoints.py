"""MediaPipe Holistic landmarks per frame, with a per-joint mask, and the normalisation models use.

The joint set keeps what carries sign information: the upper body (where the hands are relative
to the body), both hands in full (handshape), and a small face subset (mouthing and eyebrows, the
non-manual markers). Left and right are the signer's own, as MediaPipe names them.

Stored per video (`{id}.npz`): `landmarks` float32 [T, J, 3] (x, y in [0, 1] image-normalised
coordinates — a tracked joint may lie slightly outside — and MediaPipe's relative depth z),
`mask` bool [T, J] (True where the joint was detected), `interpolated` bool [T, J] (True where a
short gap between two detections was filled, see `interpolate_gaps`), `max_gap` int32 0-d (the
setting that produced `interpolated`) and `frame_size` int32 [2] (height, width) so that
normalisation can undo the image's aspect ratio. Joints neither detected nor interpolated are
zeros, never NaN. Models read `filled_mask` (detected or interpolated); accuracy is measured on
`mask` alone. With `keypoints.backend: tasks`, MediaPipe's Tasks landmarkers write the same arrays
(`signkd.features.tasks_backend`).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping

import cv2
import numpy as np

from signkd.data.manifest import Sample
from signkd.features.frames import iter_frames
from signkd.features.parallel import run_per_video
from signkd.io import load_npz

if TYPE_CHECKING:  # the tasks backend imports this module: at run time it is imported where used
    from signkd.features.tasks_backend import TasksBackend, TasksExtractor

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

# A hand missed for a few frames (motion blur, a finger crossing the face) is still where its
# neighbours say; longer gaps are real absences (hand lowered out of view) and stay empty.
DEFAULT_MAX_GAP = 4


# Bump when the arrays written for the same frames and settings change (a new joint, another
# normalisation of what is stored): every cached video is then extracted again.
EXTRACTOR_VERSION = 2


def _import_mediapipe():
    """Imported on first use: training code reads keypoints without paying for MediaPipe."""
    os.environ.setdefault("GLOG_minloglevel", "2")  # glog: warnings and info off (absl lines: workers.py)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import mediapipe as mp

    return mp


def extractor_settings(extractor: "KeypointExtractor | None" = None, backend: "TasksBackend | None" = None) -> dict:
    """Everything that decides the stored arrays besides the frames (max_gap excepted: a cached
    video is re-filled under a new max_gap without MediaPipe); the cache key of every output.

    `backend` None is Holistic, whose dict is the one every existing output was keyed by (its
    `extractor` names the backend; a new key would re-extract them all); the tasks backend's names
    itself and each model file's sha256 (`TasksBackend.settings`)."""
    from importlib.metadata import PackageNotFoundError, version

    if backend is not None:
        return backend.settings()
    extractor = extractor or KeypointExtractor()
    try:
        mediapipe_version = version("mediapipe")
    except PackageNotFoundError:
        mediapipe_version = "missing"
    return {
        "extractor": "mediapipe_holistic", "format": EXTRACTOR_VERSION, "mediapipe": mediapipe_version,
        "model_complexity": 1, "smooth_landmarks": True, "refine_face_landmarks": False,
        "min_detection_confidence": extractor.min_detection_confidence,
        "min_tracking_confidence": extractor.min_tracking_confidence,
        "pose_indices": list(POSE_INDICES), "face_indices": list(FACE_INDICES),
        "pose_visibility_min": POSE_VISIBILITY_MIN,
    }


class HolisticTracker:
    """One MediaPipe Holistic graph, fed frame by frame (a video file or a live camera): it tracks
    hands and face from frame to frame, so one tracker serves one video and is then closed."""

    def __init__(self, min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5):
        mp = _import_mediapipe()
        # model_complexity=1 is the only Holistic variant bundled with mediapipe 0.10.21;
        # 0 and 2 try to download their models at start-up, which fails offline.
        self._graph = mp.solutions.holistic.Holistic(
            static_image_mode=False,
            model_complexity=1,
            smooth_landmarks=True,
            refine_face_landmarks=False,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )

    def process(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One BGR frame -> landmarks float32 [J, 3] and mask bool [J]."""
        rgb = np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        return _frame_landmarks(self._graph.process(rgb))

    def close(self) -> None:
        self._graph.close()

    def __enter__(self) -> "HolisticTracker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class KeypointExtractor:
    """MediaPipe Holistic over one video at a time (tracking state must not leak across videos)."""

    def __init__(self, min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5):
        self.min_detection_confidence = min_detection_confidence
        self.min_tracking_confidence = min_tracking_confidence

    def extract(self, frames: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """BGR frames -> landmarks float32 [T, J, 3] and mask bool [T, J]; see the module docstring."""
        landmarks, masks = [], []
        with HolisticTracker(self.min_detection_confidence, self.min_tracking_confidence) as tracker:
            for frame in frames:
                points, mask = tracker.process(frame)
                landmarks.append(points)
                masks.append(mask)
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


def _check_max_gap(max_gap) -> None:
    if not isinstance(max_gap, (int, np.integer)) or isinstance(max_gap, bool) or max_gap < 0:
        raise ValueError(f"max_gap must be an integer >= 0, got {max_gap!r}")


def interpolate_gaps(landmarks: np.ndarray, mask: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Fill runs of at most `max_gap` undetected frames between two detections, linearly.

    Returns (landmarks with x, y, z filled in those runs, interpolated bool [T, J]); `mask` is
    not changed, so the raw detections stay known. Gaps are found per joint: a hand or the face is
    detected as a whole (all its joints share one mask), so this is per part for them, while pose
    joints pass MediaPipe's visibility threshold one by one. Leading and trailing gaps are not
    extrapolated. `max_gap` 0 disables filling.
    """
    _check_max_gap(max_gap)
    filled = np.array(landmarks, np.float32, copy=True)
    mask = np.asarray(mask, bool)
    interpolated = np.zeros(mask.shape, bool)
    if max_gap == 0:
        return filled, interpolated
    for j in range(mask.shape[1]):
        seen = np.flatnonzero(mask[:, j])
        missing = np.diff(seen) - 1
        for k in np.flatnonzero((missing > 0) & (missing <= max_gap)):
            a, b = seen[k], seen[k + 1]
            w = ((np.arange(a + 1, b) - a) / (b - a)).astype(np.float32)[:, None]
            filled[a + 1:b, j] = (1 - w) * filled[a, j] + w * filled[b, j]
            interpolated[a + 1:b, j] = True
    return filled, interpolated


def filled_mask(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """Joints a model may use: detected or interpolated (files without `interpolated`: detected)."""
    mask = np.asarray(arrays["mask"], bool)
    if "interpolated" not in arrays:
        return mask
    return mask | np.asarray(arrays["interpolated"], bool)


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


def with_gaps_filled(arrays: dict[str, np.ndarray], max_gap: int) -> dict[str, np.ndarray]:
    """`arrays` with landmarks re-interpolated from the raw detections under `max_gap`."""
    mask = np.asarray(arrays["mask"], bool)
    raw = np.where(mask[..., None], arrays["landmarks"], 0).astype(np.float32)
    landmarks, interpolated = interpolate_gaps(raw, mask, max_gap)
    return arrays | {"landmarks": landmarks, "interpolated": interpolated,
                     "max_gap": np.asarray(max_gap, np.int32)}


SAME_RATE = 0.01  # rates within 1% are one rate (29.97 and 30 fps: 0.1% apart, a sign 1 ms longer)


def at_frame_rate(frames: Iterator[np.ndarray], source_fps: float, target_fps: float) -> Iterator[np.ndarray]:
    """`frames` (a stream at `source_fps`) as a camera at `target_fps` would have taken them: for
    each target frame, the source frame nearest in time, so frames are dropped (source faster) or
    repeated (source slower). Why not interpolate: a blend of two frames shows two half-transparent
    hands, which MediaPipe never sees in training."""
    if abs(source_fps - target_fps) <= SAME_RATE * target_fps:
        yield from frames
        return
    step, k = source_fps / target_fps, 0
    for i, frame in enumerate(frames):
        while int(k * step + 0.5) == i:
            yield frame
            k += 1


def keypoints_for_video(source: str | Path, *, max_gap: int = DEFAULT_MAX_GAP, frame_stride: int = 1,
                        backend: "TasksBackend | None" = None, source_fps: float | None = None,
                        target_fps: float | None = None) -> dict[str, np.ndarray]:
    """Arrays stored for one video (see the module docstring); also what `recognize` runs.

    With `frame_stride` n > 1, MediaPipe (nearly all of `recognize`'s time) runs on every n-th
    frame only; the others get no detections and are filled like gaps (`strided_max_gap`), so the
    arrays keep one row per frame. A student trained on `thinned(stored arrays, n)` expects this.
    With `source_fps` and `target_fps` (the rate the model was trained at), the video is first
    brought to that rate (`at_frame_rate`): one row per frame at `target_fps`.
    `backend`: None = Holistic, else the Tasks landmarkers (`signkd.features.tasks_backend`)."""
    size: list[int] = []
    total = [0]
    frames = _frames_recording_size(Path(source), size)
    if source_fps and target_fps:
        frames = at_frame_rate(frames, source_fps, target_fps)

    def every_nth() -> Iterator[np.ndarray]:
        for i, frame in enumerate(frames):
            total[0] = i + 1
            if i % frame_stride == 0:
                yield frame

    extractor: KeypointExtractor | TasksExtractor
    if backend is None:
        extractor = KeypointExtractor()
    else:
        from signkd.features.tasks_backend import TasksExtractor

        extractor = TasksExtractor(backend)
    found, found_mask = extractor.extract(every_nth())
    landmarks = np.zeros((total[0], *found.shape[1:]), np.float32)
    mask = np.zeros((total[0], *found_mask.shape[1:]), bool)
    landmarks[::frame_stride], mask[::frame_stride] = found, found_mask
    arrays = {"landmarks": landmarks, "mask": mask, "frame_size": np.asarray(size, np.int32)}
    return with_gaps_filled(arrays, strided_max_gap(max_gap, frame_stride))


def strided_max_gap(max_gap: int, frame_stride: int) -> int:
    """Gap filling with MediaPipe on every n-th frame: the n - 1 skipped frames are always filled,
    and a miss on a run frame leaves a gap up to n longer than on every frame."""
    return max_gap + frame_stride - 1 if max_gap else frame_stride - 1


def thinned(arrays: dict[str, np.ndarray], frame_stride: int) -> dict[str, np.ndarray]:
    """Stored (every-frame) arrays as `keypoints_for_video(..., frame_stride=n)` would give them:
    only every n-th frame's detections kept, the rest refilled. What a student for strided
    `recognize` trains and is evaluated on. (MediaPipe's tracking between run frames is not
    replayed, so the landmarks on the kept frames are those of the every-frame run.)"""
    if frame_stride == 1:
        return arrays
    mask = np.asarray(arrays["mask"], bool).copy()
    mask[np.arange(len(mask)) % frame_stride != 0] = False
    return with_gaps_filled(arrays | {"mask": mask}, strided_max_gap(int(arrays["max_gap"]), frame_stride))


def _refresh_gaps(arrays: dict[str, np.ndarray], *, max_gap: int) -> dict[str, np.ndarray] | None:
    """A cached video made under another max_gap (or before gaps were filled) is re-filled from its
    raw detections instead of re-running MediaPipe; None when it is already current."""
    if "mask" not in arrays or "landmarks" not in arrays:
        return None  # not keypoints at all: the summary rejects it
    if "interpolated" in arrays and "max_gap" in arrays and int(arrays["max_gap"]) == max_gap:
        return None
    return with_gaps_filled(arrays, max_gap)


def _summarize_keypoints(arrays: dict[str, np.ndarray], *, max_gap: int = DEFAULT_MAX_GAP) -> dict:
    """Frame count and per-part detected / interpolated frame counts; raises ValueError for output
    of a foreign joint set or of other settings."""
    landmarks, mask = arrays["landmarks"], arrays["mask"]
    if landmarks.ndim != 3 or landmarks.shape[1:] != (NUM_JOINTS, 3) or mask.shape != landmarks.shape[:2]:
        raise ValueError(f"stored landmarks {landmarks.shape} do not match the joint set ({NUM_JOINTS} joints)")
    if arrays["frame_size"].shape != (2,):
        raise ValueError("stored frame_size is not (height, width)")
    if arrays["interpolated"].shape != mask.shape or int(arrays["max_gap"]) != max_gap:
        raise ValueError(f"stored gap filling does not match max_gap={max_gap}")
    filled = filled_mask(arrays)
    detected = {name: int(mask[:, part].any(axis=1).sum()) for name, part in PARTS.items()}
    gained = {name: int((filled[:, part].any(axis=1) & ~mask[:, part].any(axis=1)).sum())
              for name, part in PARTS.items()}
    return {"frames": int(landmarks.shape[0]), "detected": detected, "interpolated": gained}


def _rates(summaries: list[dict]) -> dict:
    frames = sum(s["frames"] for s in summaries)

    def rate(key: str, name: str) -> float:
        return round(sum(s[key][name] for s in summaries) / frames, 4) if frames else 0.0

    return {"frames": frames, "detection_rate": {name: rate("detected", name) for name in PARTS},
            "interpolated_rate": {name: rate("interpolated", name) for name in PARTS}}


def extract_keypoints(
    samples: list[Sample],
    out_dir: str | Path,
    *,
    workers: int,
    on_error: str = "fail",
    max_gap: int = DEFAULT_MAX_GAP,
    progress: bool = True,
    backend: "TasksBackend | None" = None,
) -> dict:
    """Write `out_dir/{id}.npz` per video and return stats. Resumes: a video's output made from the
    same frames under the same `extractor_settings()` is kept (re-filled when only max_gap changed);
    any other is extracted again; `out_dir` belongs to this extraction,
    so `.npz` files of ids not in `samples` are deleted.

    Stats: videos / processed / cached / skipped (with reasons) / removed_stale, frames,
    detection_rate per part (fraction of frames with that part detected, over all videos with
    output), interpolated_rate per part (fraction of frames where only gap filling supplies it),
    per_split rates when samples come from several splits, and frames_per_second of this run's
    processing. `backend`: None = Holistic; a started `TasksBackend` adds which parts it extracted
    and each model's sha256 (`TasksBackend.metrics`).
    """
    _check_max_gap(max_gap)  # before any worker starts
    report = run_per_video(samples, out_dir, functools.partial(keypoints_for_video, max_gap=max_gap, backend=backend),
                           functools.partial(_summarize_keypoints, max_gap=max_gap),
                           refresh=functools.partial(_refresh_gaps, max_gap=max_gap),
                           settings=extractor_settings(backend=backend),
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
    return stats if backend is None else stats | backend.metrics()

