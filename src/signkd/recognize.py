"""Recognise one video on the CPU: MediaPipe -> the exported student -> decoder -> correction.

The features are built by the same functions the pipeline trains on (`keypoint_features`,
`pad_inputs`), with the settings stored in the exported model (keypoint parts, gap filling,
decoding), and the glosses come from the project's one inference path (`signkd.inference`).

Each gloss gets a confidence: the mean posterior of its class over the frames a CTC forced
alignment of the hypothesis assigns to it. The same alignment says when each gloss was signed,
which the `--overlay` video uses for its running caption.
"""

from __future__ import annotations

import json
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from signkd.errors import InputError
from signkd.inference import DecodeConfig, OnnxBackend, glosses_from_log_probs
from signkd.model_input import DOWNSAMPLE, keypoint_features
from signkd.models.spec import ModelSpec

# Nothing here imports torch (~2.5 s of CPU per call): the student runs under ONNX Runtime.

DEFAULT_MODEL = Path("models/quantize/student_int8.onnx")
# below this mean gloss confidence the input is outside what the model knows (signs it never
# learned, another domain): 0.7905, the 2nd percentile of the default int8 student's dev scores,
# measured by benchmarks/abstention_probe.py (reports/abstention/metrics.json: 2.7% false alarms
# on test, 40% of sentences of unknown signs caught). It belongs to one model: rerun the probe
# after retraining.
MIN_CONFIDENCE = 0.79
MIN_HAND_FRAMES = 0.1  # below this share of frames with a detected hand, nobody is signing
# below this hand travel (shoulder widths; see hand_motion) the hands are held still: nobody is
# signing. Calibrated by benchmarks/signing_probe.py (reports/signing_probe/metrics.json)
MIN_HAND_MOTION = 0.2
NOT_TIMED = ("overlay",)  # optional outputs, not part of recognising (nor of the real-time factor)


class RecognizeError(InputError, RuntimeError):
    """The video cannot be recognised; the message says why in one line, and `state` which case it
    is (one of STATES), for a page that shows each its own way."""

    def __init__(self, message: str, state: str = "error"):
        super().__init__(message)
        self.state = state


# Why a video got no glosses (RecognizeError.state); `Recognition.state` covers the rest
STATES = ("unreadable", "too_short", "not_signing", "no_model", "error")


class _Clock:
    """Wall and CPU seconds per step: on a shared machine the CPU time is what one free core needs."""

    def __init__(self):
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextmanager
    def step(self, name: str):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall[name] = time.perf_counter() - wall
            self.cpu[name] = time.process_time() - cpu


@dataclass(frozen=True)
class GlossSpan:
    gloss: str
    confidence: float  # mean posterior of the gloss over its aligned frames
    start_frame: int  # first input frame of its aligned steps
    end_frame: int  # one past the last


@dataclass
class Recognition:
    video: str
    frames: int
    fps: float
    glosses: list[str]
    corrected: list[str]
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds per step
    spans: list[GlossSpan] = field(default_factory=list)
    cpu_timings: dict[str, float] = field(default_factory=dict)  # CPU seconds per step (all threads)
    correction: str = "off"  # applied | not applied (the gate accepts nothing) | off
    source_fps: float = 0.0  # the input's own rate; `frames` and `fps` (and the spans) are at the model's

    @property
    def confidence(self) -> float:
        """The mean gloss confidence: what the "outside what this model knows" rule reads."""
        return mean_confidence(self.spans)

    @property
    def known(self) -> bool:
        return self.confidence >= MIN_CONFIDENCE

    @property
    def real_time_factor(self) -> float:
        """Processing seconds per second of video (< 1: faster than real time)."""
        busy = sum(v for k, v in self.timings.items() if k not in NOT_TIMED)
        return busy / (self.frames / self.fps)

    @property
    def state(self) -> str:
        """recognized | outside_vocabulary (mean confidence below MIN_CONFIDENCE) | no_gloss
        (signing seen, nothing recognised)."""
        if not self.glosses:
            return "no_gloss"
        return "recognized" if self.known else "outside_vocabulary"

    def summary(self) -> dict:
        """What `signkd recognize --json` prints and the demo page shows."""
        return {
            "video": self.video,
            "frames": self.frames,
            "fps": self.fps,  # the model's rate, at which `frames` and the spans count
            "source_fps": self.source_fps,
            "glosses": " ".join(self.glosses),
            "corrected": " ".join(self.corrected),
            "correction": self.correction,
            "state": self.state,
            "confidence": round(self.confidence, 4),
            "min_confidence": MIN_CONFIDENCE,
            "seconds": {k: round(v, 3) for k, v in self.timings.items()},
            "cpu_seconds": {k: round(v, 3) for k, v in self.cpu_timings.items()},
            "real_time_factor": round(self.real_time_factor, 3),
            "confidences": [{"gloss": s.gloss, "confidence": s.confidence, "start_s": round(s.start_frame / self.fps, 2),
                             "end_s": round(s.end_frame / self.fps, 2)} for s in self.spans],
        }


def corrector_applies(directory: str | Path) -> bool:
    """False when the saved corrector's dev-calibrated gate accepts no correction (margin null):
    its output then always equals its input, so `recognize` skips loading it -- importing
    transformers and the model alone cost ~0.4 s per second of a 10 s video on one core."""
    config = Path(directory) / "corrector.json"  # signkd.correction.model.CONFIG_FILE; importing it pulls in transformers
    try:
        return json.loads(config.read_text(encoding="utf-8"))["margin"] is not None
    except (OSError, KeyError, TypeError, ValueError):
        return True  # not a readable saved corrector: GlossCorrector.load says what is wrong


def video_fps(source: Path, default: float = 25.0) -> float:
    """The video file's own frame rate; frame folders carry none, so Phoenix's 25 fps is assumed."""
    if source.is_dir():
        return default
    import cv2

    cap = cv2.VideoCapture(str(source))
    fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    if cap.isOpened() and not (fps and np.isfinite(fps) and 1.0 <= fps <= MAX_PLAUSIBLE_FPS):
        fps = _fps_from_timestamps(cap)  # e.g. a browser's WebM recording: a 1 ms time base, no frame rate
    cap.release()
    return float(fps) if fps and np.isfinite(fps) and fps > 0 else default


MAX_PLAUSIBLE_FPS = 240.0


def _fps_from_timestamps(cap) -> float:
    """Frames per second of video time, from the frames' own timestamps (0 if there are too few)."""
    import cv2

    stamps = []
    while cap.grab():
        stamps.append(cap.get(cv2.CAP_PROP_POS_MSEC))
    span = (stamps[-1] - stamps[0]) / 1000.0 if len(stamps) >= 2 else 0.0
    return (len(stamps) - 1) / span if span > 0 else 0.0


def load_deployable(model: str | Path, threads: int = 1) -> tuple[OnnxBackend, ModelSpec]:
    """An exported student and its spec, from a path or an MLflow model URI (`models:/<name>@champion`)."""
    from signkd.registry import download_onnx, is_model_uri

    if is_model_uri(model):
        with tempfile.TemporaryDirectory(prefix="signkd-model-") as tmp:
            try:
                path = download_onnx(str(model), tmp)
            except Exception as err:  # noqa: BLE001 - MLflow raises many kinds; one line for the user
                first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise RecognizeError(f"cannot load {model} from the MLflow store (MLFLOW_TRACKING_URI): {first}", "no_model") from err
            return _open(path, str(model), threads)  # the session holds the model in memory: the file may go
    return _open(Path(model), str(model), threads)


def _open(path: Path, shown: str, threads: int) -> tuple[OnnxBackend, ModelSpec]:
    if not path.is_file():
        raise RecognizeError(f"model {shown} not found: run `make repro` (or `dvc repro quantize`) first, or pass --model", "no_model")
    try:
        backend = OnnxBackend(path, threads=max(1, threads))
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own (InvalidProtobuf, Fail, ...)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RecognizeError(f"{shown} is not a readable ONNX model ({first[:160]}); pass the .onnx that "
                             "`dvc repro quantize` writes (models/quantize/student_int8.onnx) or re-export it", "no_model") from None
    try:
        spec = backend.config
    except InputError as err:
        named = "" if shown == str(path) else f"{shown}: "  # the error names the file; an MLflow URI's is a temporary one
        raise RecognizeError(f"{named}{err}; re-export it with `dvc repro quantize`", "no_model") from None
    if spec is None:
        raise RecognizeError(f"{shown} carries no SignKD config (vocabulary, preprocessing): re-export it with `dvc repro quantize`", "no_model")
    return backend, spec


def _check_video_input(video: Path) -> None:
    """What a person may pass by mistake: a single image or a folder with no images, answered for a
    person with a video (the frame reader's own advice is for the pipeline's manifests)."""
    from signkd.features.frames import IMAGE_SUFFIXES, VIDEO_SUFFIXES

    if video.is_file() and video.suffix.lower() in IMAGE_SUFFIXES:
        raise RecognizeError(f"{video} is a single image; recognition needs a video: give a video file "
                             f"({', '.join(VIDEO_SUFFIXES)}) or a folder holding the frames in order", "unreadable")
    if video.is_dir() and not any(p.suffix.lower() in IMAGE_SUFFIXES for p in video.iterdir() if p.is_file()):
        raise RecognizeError(f"{video} holds no frame images ({', '.join(IMAGE_SUFFIXES)}); give a video file "
                             f"({', '.join(VIDEO_SUFFIXES)}) or a folder of its frames", "unreadable")


def ctc_align(log_probs: np.ndarray, labels: list[int]) -> list[tuple[int, int]]:
    """Viterbi CTC alignment: per label, the [first, last + 1) steps of the best path that emits
    exactly `labels` (blank = class 0). Raises ValueError if no path of this length can."""
    if not labels:
        return []
    lp = np.asarray(log_probs, np.float64)
    ext = np.zeros(2 * len(labels) + 1, int)
    ext[1::2] = labels
    steps, states = len(lp), len(ext)
    skip = np.zeros(states, bool)  # s-2 -> s: from one label to the next, unless both are equal
    skip[3::2] = ext[3::2] != ext[1:-2:2]
    score = np.full(states, -np.inf)
    score[:2] = lp[0, ext[:2]]
    back = np.zeros((steps, states), int)
    for t in range(1, steps):
        cand = np.stack([score, np.r_[-np.inf, score[:-1]], np.where(skip, np.r_[-np.inf, -np.inf, score[:-2]], -np.inf)])
        back[t] = cand.argmax(0)
        score = cand.max(0) + lp[t, ext]
    state = states - 1 if score[-1] >= score[-2] else states - 2
    if not np.isfinite(score[state]):
        raise ValueError(f"{len(labels)} labels cannot be aligned to {steps} steps")
    path = np.empty(steps, int)
    for t in range(steps - 1, -1, -1):
        path[t] = state
        state -= back[t, state]
    spans = []
    for k in range(len(labels)):
        where = np.flatnonzero(path == 2 * k + 1)
        spans.append((int(where[0]), int(where[-1]) + 1))
    return spans


def gloss_spans(log_probs: np.ndarray, glosses: list[str], vocab: Sequence[str]) -> list[GlossSpan]:
    labels = [vocab.index(g) + 1 for g in glosses]
    out = []
    for g, c, (a, b) in zip(glosses, labels, ctc_align(log_probs, labels)):
        confidence = float(np.exp(log_probs[a:b, c]).mean())
        out.append(GlossSpan(g, round(confidence, 4), a * DOWNSAMPLE, b * DOWNSAMPLE))
    return out


def read_glosses(arrays: dict[str, np.ndarray], backend: OnnxBackend, spec: ModelSpec, decoding: DecodeConfig | None = None,
                 name: str = "?") -> tuple[list[str], list[GlossSpan]]:
    """Landmark arrays (at the model's rate) -> glosses and their spans: the model step of
    `recognize`, also what calibrates its rules on stored features."""
    prep = spec.preprocessing
    features = keypoint_features(arrays, prep.keypoint_parts)
    decoding = decoding or DecodeConfig(prep.decode_method, prep.beam_width)
    log_probs = backend.run_arrays({"keypoints": features}, name)
    hyp = glosses_from_log_probs(log_probs, spec.vocab, decoding)
    return hyp, gloss_spans(log_probs, hyp, spec.vocab)


def recognize(
    video: str | Path, model_path: str | Path = DEFAULT_MODEL, *, decoding: DecodeConfig | None = None,
    corrector_dir: str | Path | None = None, fps: float | None = None, overlay: str | Path | None = None,
    threads: int = 1,
) -> Recognition:
    from signkd.features.frames import FrameSourceError
    from signkd.features.keypoints import keypoints_for_video
    from signkd.features.tasks_backend import backend_for_record
    from signkd.features.workers import quiet_native_logs

    video = Path(video)
    clock = _Clock()
    with clock.step("load"):
        backend, spec = load_deployable(model_path, threads)
    prep = spec.preprocessing
    if not video.exists():
        raise RecognizeError(f"{video} does not exist: give a video file (.mp4, .avi, .webm) or a folder of frame images", "unreadable")
    _check_video_input(video)
    # None (Holistic) unless trained on tasks keypoints: then its models (given as the dict the backend module reads)
    keypoint_backend = backend_for_record(prep.model_dump())
    source_fps = fps or video_fps(video)
    model_fps = prep.fps

    with clock.step("keypoints"):
        try:
            with quiet_native_logs():  # MediaPipe/TFLite info and warning lines are not the user's business
                arrays = keypoints_for_video(video, max_gap=prep.max_gap, frame_stride=prep.frame_stride,
                                             backend=keypoint_backend, source_fps=source_fps, target_fps=model_fps)
        except FrameSourceError as err:
            raise RecognizeError(str(err), "unreadable") from None
    frames = int(len(arrays["mask"]))  # at the model's rate
    if frames // DOWNSAMPLE < 1:
        raise RecognizeError(f"{video}: too short ({frames} frames); the model needs at least {DOWNSAMPLE}", "too_short")
    if _hand_share(arrays) < MIN_HAND_FRAMES:
        raise RecognizeError(f"{video}: no signing detected (hands found in {_hand_share(arrays):.0%} of {frames} frames)", "not_signing")
    if hand_motion(arrays) < MIN_HAND_MOTION:
        raise RecognizeError(f"{video}: no signing detected (the hands hardly move: {hand_motion(arrays):.2f} shoulder "
                             f"widths, signing moves them at least {MIN_HAND_MOTION}); record the person signing", "not_signing")

    with clock.step("model"):
        hyp, spans = read_glosses(arrays, backend, spec, decoding, video.name)

    corrected, correction = hyp, "off"
    if corrector_dir is not None and not corrector_applies(corrector_dir):
        correction = "not applied"
    elif corrector_dir is not None:
        with clock.step("correction"):
            import torch  # only the corrector needs it; small models beside other work run fastest on 1 thread

            from signkd.correction import GlossCorrector

            torch.set_num_threads(max(1, threads))

            corrected, correction = GlossCorrector.load(corrector_dir).correct([hyp])[0], "applied"
    result = Recognition(str(video), frames, model_fps, hyp, corrected, clock.wall, spans, clock.cpu, correction,
                         source_fps=source_fps)
    if overlay is not None:
        with clock.step("overlay"):
            from signkd.features.overlay import write_overlay_video

            rows = rows_for_source_frames(_count_frames(video), source_fps, model_fps, frames)
            shown = {k: (v[rows] if np.ndim(v) and len(v) == frames else v) for k, v in arrays.items()}  # per-frame arrays
            captions = running_captions(spans, frames)
            write_overlay_video(video, shown, overlay, [captions[r] for r in rows], source_fps)
    return result


def rows_for_source_frames(source_frames: int, source_fps: float, model_fps: float, rows: int) -> np.ndarray:
    """For each frame of the input video, the row (a frame at the model's rate) nearest in time:
    how the overlay draws model-rate landmarks and captions on the video as it was recorded."""
    return np.minimum((np.arange(source_frames) * model_fps / source_fps + 0.5).astype(int), rows - 1)


def _count_frames(video: Path) -> int:
    from signkd.features.frames import iter_frames

    return sum(1 for _ in iter_frames(video))


def running_captions(spans: list[GlossSpan], frames: int) -> list[str]:
    """Per frame, the glosses whose signing has begun by then (a caption that grows as they come)."""
    return [" ".join(s.gloss for s in spans if s.start_frame <= t) for t in range(frames)]


def hand_motion(arrays: dict[str, np.ndarray]) -> float:
    """How far the hands travel: per hand, the spread (5th to 95th percentile) of its centre over
    the frames where it is detected, in shoulder widths; the larger hand's. A person standing
    still, hands visible or not, stays near 0 (MediaPipe's jitter); signing moves a hand across
    the signing space."""
    from signkd.features.keypoints import PARTS, filled_mask, normalize_keypoints

    mask = filled_mask(arrays)
    height, width = (int(v) for v in arrays["frame_size"])
    xy = normalize_keypoints(arrays["landmarks"], mask, aspect=width / height)
    spread = 0.0
    for part in ("left_hand", "right_hand"):
        seen = mask[:, PARTS[part]].all(axis=1)
        if seen.sum() >= 2:
            centres = xy[seen][:, PARTS[part]].mean(axis=1)  # [frames, 2]
            low, high = np.percentile(centres, [5, 95], axis=0)
            spread = max(spread, float(np.linalg.norm(high - low)))
    return spread


def mean_confidence(spans: list[GlossSpan]) -> float:
    """The hypothesis' mean gloss confidence (0 without glosses)."""
    return float(np.mean([s.confidence for s in spans])) if spans else 0.0


def is_signing(arrays: dict[str, np.ndarray]) -> bool:
    """`recognize`'s "somebody is signing" rule: hands seen often enough, and moving."""
    return _hand_share(arrays) >= MIN_HAND_FRAMES and hand_motion(arrays) >= MIN_HAND_MOTION


def _hand_share(arrays: dict[str, np.ndarray]) -> float:
    from signkd.features.keypoints import PARTS

    mask = np.asarray(arrays["mask"], bool)
    hands = np.concatenate([mask[:, PARTS[p]] for p in ("left_hand", "right_hand")], axis=1)
    return float(hands.any(axis=1).mean()) if len(mask) else 0.0
