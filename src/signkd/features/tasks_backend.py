"""Keypoints from MediaPipe's Tasks API (`keypoints.backend: tasks`) in Holistic's exact layout.

MediaPipe >= 0.10.30 dropped the legacy Holistic solution; its Tasks landmarkers (hand, pose, face)
are what remains. This backend writes the same 73 joints, mask and gap filling as Holistic, so
every later stage reads its output unchanged. Each part runs only when its model file is set
(`keypoints.tasks.<part>.path`); a part without one stays undetected (mask False).

Which hand is whose. Holistic takes each hand from the region of its pose wrist, so its sides are
the signer's anatomical ones. The hand landmarker instead returns up to two hands with a handedness
label. Measured on the synthetic corpus against the renderer's truth (40 test videos, 2,573 hand
detections; benchmarks/keypoint_backends.py, reports/keypoint_backends/metrics.json): on our
unmirrored frames the label names the signer's own side ("Left" = the signer's left hand, drawn on
the image's right) for 77% of detections, and mirroring the frames inverts it (21%), as the Tasks
docs now say ("correspond to the subject's hands... a horizontally mirrored image will invert these
outputs"; the legacy Hands docs told users of unmirrored images to swap them: that would be wrong
here). 77% is too noisy to decide sides alone (18% hand swaps; Holistic: 0.2%), so sides come from
geometry first (`hand_sides`): with a pose, each hand goes to the nearer pose wrist (Holistic's own
rule; 0.8% swaps with Holistic's wrists standing in); without one, of two hands the one further
right in the image is the signer's left (6.0% swaps: crossed hands, or one hand found twice, are
its failures); only a lone hand without a pose takes its label. Two hands that carry the same label
are therefore never a conflict: geometry places them, the scores only pick the best two.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np

from signkd.errors import InputError
from signkd.features import model_files
from signkd.features.keypoints import (
    EXTRACTOR_VERSION,
    FACE,
    FACE_INDICES,
    LEFT_HAND,
    NUM_JOINTS,
    POSE,
    POSE_INDICES,
    POSE_VISIBILITY_MIN,
    RIGHT_HAND,
    _import_mediapipe,
)
from signkd.features.model_files import ModelFile

# Holistic (the legacy solution) advances its clock 33.333 ms per frame whatever the video's rate;
# the Tasks landmarkers' tracking and smoothing get the same steps.
FRAME_INTERVAL_MS = 33
MIN_CONFIDENCE = 0.5  # detection, presence and tracking, as Holistic's 0.5 / 0.5
HAND_SIDES = "pose_wrist|image_order|label:v1"  # the rule of `hand_sides`; in the cache key
LABEL_SIDE = {"Left": "left", "Right": "right"}  # verified: see the module docstring
SIDE_PART = {"left": LEFT_HAND, "right": RIGHT_HAND}
LEFT_WRIST, RIGHT_WRIST = 15, 16  # MediaPipe Pose indices


class BackendError(InputError, ValueError):
    """A model names a keypoint backend this version does not know."""


@dataclass(frozen=True)
class TasksBackend:
    """The tasks backend with its model files resolved (`start`): what workers get (picklable)."""

    models: tuple[ModelFile, ...]

    def model(self, part: str) -> ModelFile | None:
        return next((m for m in self.models if m.part == part), None)

    def settings(self) -> dict:
        """The cache key of every output: the model files by content, not by path."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            mediapipe_version = version("mediapipe")
        except PackageNotFoundError:
            mediapipe_version = "missing"
        return {
            "extractor": "mediapipe_tasks", "backend": "tasks", "format": EXTRACTOR_VERSION,
            "mediapipe": mediapipe_version, "models_sha256": {m.part: m.sha256 for m in self.models},
            "running_mode": "video", "frame_interval_ms": FRAME_INTERVAL_MS, "num_hands": 2,
            "min_confidence": MIN_CONFIDENCE, "hand_sides": HAND_SIDES,
            "pose_indices": list(POSE_INDICES), "face_indices": list(FACE_INDICES),
            "pose_visibility_min": POSE_VISIBILITY_MIN,
        }

    def metrics(self) -> dict:
        """Flat stage metrics: which parts ran and each model's sha256."""
        out: dict = {"backend": "tasks", "tasks_parts": ",".join(m.part for m in self.models)}
        for part in model_files.PARTS:
            model = self.model(part)
            out[f"tasks_extracted_{part}"] = int(model is not None)
            if model is not None:
                out[f"tasks_sha256_{part}"] = model.sha256
        return out


def start(tasks: dict[str, dict], *, progress: bool = True) -> TasksBackend:
    """Fetch or check every configured model file (`keypoints.tasks`, or a checkpoint's record)."""
    return TasksBackend(tuple(model_files.ensure(m, progress=progress) for m in model_files.configured(tasks)))


def backend_for_record(preprocessing: dict) -> TasksBackend | None:
    """The backend a model's features came from (its checkpoint's preprocessing); None = Holistic,
    also for models saved before the backend was recorded. Tasks models are checked against the
    sha256 recorded at training time."""
    name = preprocessing.get("keypoint_backend", "holistic")
    if name == "holistic":
        return None
    if name != "tasks":
        raise BackendError(f"the model was trained on keypoints of backend {name!r}, which this version does not "
                           "know (holistic, tasks); use the SignKD version that trained it")
    return start(preprocessing.get("keypoint_models", {}), progress=False)


@dataclass(frozen=True)
class Hand:
    points: np.ndarray  # [21, 3] normalised x, y and MediaPipe's relative z
    label: str  # MediaPipe's handedness: "Left" | "Right"
    score: float


def hands_of(result) -> list[Hand]:
    return [Hand(_points(found), category[0].category_name, float(category[0].score))
            for found, category in zip(result.hand_landmarks, result.handedness)]


def hand_sides(hands: list[Hand], wrists: np.ndarray | None, scale: np.ndarray) -> dict[str, Hand]:
    """Side ("left"/"right", the signer's) -> hand; see the module docstring for the rule and its
    measured errors. `wrists`: the pose's left and right wrist x, y [2, 2] or None; `scale`: the
    frame's width and height, so that distances are in pixels."""
    hands = sorted(hands, key=lambda h: -h.score)[:2]
    if not hands:
        return {}
    if wrists is not None:
        dist = np.array([[np.linalg.norm((h.points[0, :2] - w) * scale) for w in wrists] for h in hands])
        if len(hands) == 1:
            return {("left", "right")[int(dist[0].argmin())]: hands[0]}
        keep = dist[0, 0] + dist[1, 1] <= dist[0, 1] + dist[1, 0]
        return {"left": hands[0], "right": hands[1]} if keep else {"left": hands[1], "right": hands[0]}
    if len(hands) == 2:  # unmirrored, facing the camera: the signer's right hand is on the image's left
        image_left, image_right = sorted(hands, key=lambda h: float(h.points[:, 0].mean()))
        return {"left": image_right, "right": image_left}
    side = LABEL_SIDE.get(hands[0].label)
    return {side: hands[0]} if side else {}


def _points(landmarks) -> np.ndarray:
    return np.array([(lm.x, lm.y, lm.z) for lm in landmarks], np.float32).reshape(-1, 3)


def put_pose(points: np.ndarray, mask: np.ndarray, pose) -> np.ndarray:
    """Pose joints above POSE_VISIBILITY_MIN into `points`/`mask`; returns the wrists' x, y [2, 2]
    (all 33 joints come with a guess, so the wrists serve hand sides even when not visible). A
    landmark without visibility counts as not visible."""
    for j, index in enumerate(POSE_INDICES, start=POSE.start):
        lm = pose[index]
        if (lm.visibility or 0.0) >= POSE_VISIBILITY_MIN:
            points[j] = (lm.x, lm.y, lm.z)
            mask[j] = True
    return np.array([(pose[i].x, pose[i].y) for i in (LEFT_WRIST, RIGHT_WRIST)], np.float32)


def put_face(points: np.ndarray, mask: np.ndarray, face) -> None:
    """FACE_INDICES index the 468-point mesh, the first 468 of the landmarker's 478 (10 iris points follow)."""
    points[FACE] = [(face[i].x, face[i].y, face[i].z) for i in FACE_INDICES]
    mask[FACE] = True


@contextlib.contextmanager
def landmarkers(backend: TasksBackend) -> Iterator[dict]:
    """Fresh landmarkers (part -> landmarker) in VIDEO mode, closed on exit: one set per video,
    so tracking state never leaks from one video into the next."""
    _import_mediapipe()  # its quiet-log environment first
    from mediapipe.tasks.python import BaseOptions, vision

    def options(part: str):
        # part is one of backend.models' own parts, so the model is always found
        base = BaseOptions(model_asset_buffer=model_files.read_verified(cast(ModelFile, backend.model(part))))
        common = {"base_options": base, "running_mode": vision.RunningMode.VIDEO,
                  "min_tracking_confidence": MIN_CONFIDENCE}
        if part == "hand":
            return vision.HandLandmarker, vision.HandLandmarkerOptions(
                num_hands=2, min_hand_detection_confidence=MIN_CONFIDENCE,
                min_hand_presence_confidence=MIN_CONFIDENCE, **common)
        if part == "pose":
            return vision.PoseLandmarker, vision.PoseLandmarkerOptions(
                num_poses=1, min_pose_detection_confidence=MIN_CONFIDENCE,
                min_pose_presence_confidence=MIN_CONFIDENCE, **common)
        return vision.FaceLandmarker, vision.FaceLandmarkerOptions(
            num_faces=1, min_face_detection_confidence=MIN_CONFIDENCE,
            min_face_presence_confidence=MIN_CONFIDENCE, **common)

    with contextlib.ExitStack() as stack:
        opened = {}
        for model in backend.models:
            task, opts = options(model.part)
            opened[model.part] = stack.enter_context(task.create_from_options(opts))
        yield opened


def to_image(frame: np.ndarray):
    """BGR frame -> MediaPipe image (RGB), as Holistic is fed."""
    mp = _import_mediapipe()
    return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))


def frame_landmarks(opened: dict, frame: np.ndarray, timestamp_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """One frame's [J, 3] points and [J] mask in Holistic's layout; never NaN."""
    image = to_image(frame)
    points = np.zeros((NUM_JOINTS, 3), np.float32)
    mask = np.zeros(NUM_JOINTS, bool)
    wrists = None
    if "pose" in opened:
        found = opened["pose"].detect_for_video(image, timestamp_ms).pose_landmarks
        if found:
            wrists = put_pose(points, mask, found[0])
    if "face" in opened:
        found = opened["face"].detect_for_video(image, timestamp_ms).face_landmarks
        if found:
            put_face(points, mask, found[0])
    if "hand" in opened:
        scale = np.array(frame.shape[1::-1], np.float32)  # width, height
        for side, hand in hand_sides(hands_of(opened["hand"].detect_for_video(image, timestamp_ms)), wrists, scale).items():
            points[SIDE_PART[side]] = hand.points
            mask[SIDE_PART[side]] = True
    bad = ~np.isfinite(points).all(axis=1)
    points[bad] = 0.0
    mask[bad] = False
    return points, mask


class TasksExtractor:
    """The tasks counterpart of `KeypointExtractor`: one video per `extract` call."""

    def __init__(self, backend: TasksBackend):
        self.backend = backend

    def extract(self, frames: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """BGR frames -> landmarks float32 [T, J, 3] and mask bool [T, J], as `KeypointExtractor.extract`."""
        landmarks, masks = [], []
        with landmarkers(self.backend) as opened:
            for i, frame in enumerate(frames):
                points, mask = frame_landmarks(opened, frame, i * FRAME_INTERVAL_MS)
                landmarks.append(points)
                masks.append(mask)
        if not landmarks:
            return np.zeros((0, NUM_JOINTS, 3), np.float32), np.zeros((0, NUM_JOINTS), bool)
        return np.stack(landmarks), np.stack(masks)
