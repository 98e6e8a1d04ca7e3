"""Live captions: MediaPipe on frames as they arrive, the student over a sliding window, and a
gloss committed once two windows agree on it.

A source (a camera, or a file played at its own frame rate as if it were one) keeps only its
newest frame: when MediaPipe is slower than the camera, the frames it had no time for are
skipped rather than queued, so the captions never fall further and further behind. Each frame
that is processed lands on the model's frame grid (its training rate, `preprocessing.fps`) at
its capture time; the rows in between stay undetected and are filled like gaps, as a student
trained for `student.frame_stride` expects. The stride live mode actually ran at is reported.

Every `hop_s` seconds the student reads the last `window_s` seconds through the same functions
`recognize` uses (`signkd.recognize.read_glosses`: features, the ONNX student, the decoder, spans). A gloss is
committed when it ends at least `guard_s` before the window's edge (its sign is complete) and the
previous window also had it; glosses are committed in order and never taken back. When the
source ends, the rest of the last window is committed. Latency is the time from the capture of a
gloss's last aligned frame to its commit.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from signkd.features.frames import iter_frames
from signkd.features.keypoints import NUM_JOINTS, HolisticTracker, strided_max_gap, with_gaps_filled
from signkd.inference import DecodeConfig
from signkd.model_input import DOWNSAMPLE
from signkd.recognize import GlossSpan, load_deployable, read_glosses, video_fps


class LatestFrame:
    """A one-frame slot between a source thread and the recogniser: a new frame replaces one not
    yet taken (skipped), `take` waits for a frame newer than the last one taken."""

    def __init__(self):
        self._cond = threading.Condition()
        self._frame: tuple[float, float, np.ndarray] | None = None  # (video time s, wall time, BGR)
        self._done = False
        self.published = 0

    def put(self, video_time: float, frame: np.ndarray) -> None:
        with self._cond:
            self._frame = (video_time, time.perf_counter(), frame)
            self.published += 1
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._done = True
            self._cond.notify()

    def take(self) -> tuple[float, float, np.ndarray] | None:
        with self._cond:
            while self._frame is None and not self._done:
                self._cond.wait()
            frame, self._frame = self._frame, None
            return frame


def play_file(path: Path, slot: LatestFrame, fps: float | None = None) -> threading.Thread:
    """Publish a video file's (or frame folder's) frames at their own rate, as a camera would."""
    rate = fps or video_fps(path)

    def run() -> None:
        start = time.perf_counter()
        try:
            for i, frame in enumerate(iter_frames(path)):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                slot.put(i / rate, frame)
        finally:
            slot.close()

    thread = threading.Thread(target=run, name="signkd-play", daemon=True)
    thread.start()
    return thread


def read_camera(index: int, slot: LatestFrame, stop: threading.Event) -> threading.Thread:
    """Publish camera `index`'s frames as they arrive, stamped with the time since the first."""
    import cv2

    cap = cv2.VideoCapture(index)
    if not cap.isOpened():
        raise RuntimeError(f"camera {index} cannot be opened: is it connected, and free?")

    def run() -> None:
        start = time.perf_counter()
        try:
            while not stop.is_set():
                ok, frame = cap.read()
                if not ok:
                    break
                slot.put(time.perf_counter() - start, frame)
        finally:
            cap.release()
            slot.close()

    thread = threading.Thread(target=run, name="signkd-camera", daemon=True)
    thread.start()
    return thread


@dataclass(frozen=True)
class Caption:
    gloss: str
    confidence: float
    start_s: float
    end_s: float  # video time of the gloss's last aligned frame
    latency_s: float  # from that frame's capture to the commit


@dataclass
class LiveResult:
    captions: list[Caption] = field(default_factory=list)
    frames_published: int = 0
    frames_processed: int = 0
    strides: list[int] = field(default_factory=list)  # model-grid frames between processed frames
    mediapipe_s: list[float] = field(default_factory=list)

    @property
    def glosses(self) -> list[str]:
        return [c.gloss for c in self.captions]

    @property
    def stride(self) -> float:
        """The median stride on the model's frame grid (1: every frame processed)."""
        return float(np.median(self.strides)) if self.strides else 1.0


class LiveRecognizer:
    """The sliding-window recogniser over landmarks placed on the model's frame grid."""

    def __init__(self, model: str | Path, *, window_s: float = 3.0, hop_s: float = 0.5, guard_s: float = 0.3,
                 decoding: DecodeConfig | None = None, on_caption: Callable[[Caption], None] | None = None):
        self.backend, self.spec = load_deployable(model)
        prep = self.spec.preprocessing
        self.max_gap = prep.max_gap
        self.fps = prep.fps
        self.decoding = decoding or DecodeConfig(prep.decode_method, prep.beam_width)
        self.window, self.hop = round(window_s * self.fps), max(1, round(hop_s * self.fps))
        self.guard = round(guard_s * self.fps)
        self.on_caption = on_caption
        # one row per model-grid frame from row `first`: older rows are dropped once no window can
        # read them, so a camera left running keeps memory bounded
        self.landmarks: list[np.ndarray] = []
        self.mask: list[np.ndarray] = []
        self.first = 0
        self.captured_at: dict[int, float] = {}  # grid row -> wall time of its frame's capture
        self.frame_size: tuple[int, int] | None = None
        self.committed_until = 0  # grid row: glosses ending before it are committed
        self.previous: list[tuple[str, int, int]] = []
        self.result = LiveResult()
        self._next_window_end = self.hop

    def add(self, video_time: float, wall: float, points: np.ndarray, mask: np.ndarray) -> None:
        row = int(video_time * self.fps + 0.5)
        last = self.rows - 1
        if row <= last:  # two frames on one grid row (a source faster than the model): keep the first
            return
        if last >= 0:
            self.result.strides.append(row - last)
        while self.rows < row:
            self.landmarks.append(np.zeros((NUM_JOINTS, 3), np.float32))
            self.mask.append(np.zeros(NUM_JOINTS, bool))
        self.landmarks.append(points)
        self.mask.append(mask)
        self.captured_at[row] = wall
        while self.rows >= self._next_window_end:
            self._window(self._next_window_end, final=False)
            self._next_window_end += self.hop
            # the next window, or the last one when the source ends, starts no earlier than this
            self._forget_before(self._next_window_end - self.hop - self.window)

    @property
    def rows(self) -> int:
        """Model-grid rows seen so far (the next row's index)."""
        return self.first + len(self.landmarks)

    def _forget_before(self, row: int) -> None:
        drop = max(0, row - self.first)
        if drop:
            del self.landmarks[:drop], self.mask[:drop]
            self.first += drop
            self.captured_at = {r: w for r, w in self.captured_at.items() if r >= row}

    def finish(self) -> LiveResult:
        if self.landmarks:
            self._window(self.rows, final=True)
        return self.result

    def _window(self, end: int, final: bool) -> None:
        start = max(0, end - self.window)
        landmarks = np.stack(self.landmarks[start - self.first:end - self.first])
        mask = np.stack(self.mask[start - self.first:end - self.first])
        if (end - start) // DOWNSAMPLE < 1 or not mask.any():
            return
        stride = max(1, int(np.median(self.result.strides[-20:]))) if self.result.strides else 1
        arrays = with_gaps_filled({"landmarks": landmarks, "mask": mask,  # as keypoints_for_video fills them
                                   "frame_size": np.asarray(self.frame_size or (260, 210), np.int32)},
                                  strided_max_gap(self.max_gap, stride))
        _, found = read_glosses(arrays, self.backend, self.spec, self.decoding, "live")  # recognize's model step
        spans = [(s.gloss, start + s.start_frame, start + s.end_frame, s.confidence) for s in found]
        for gloss, a, b, confidence in spans:
            if (a + b) / 2 < self.committed_until:
                continue  # centred before the last commit: a gloss already committed, aligned anew
            stable = any(g == gloss and pa < b and a < pb for g, pa, pb in self.previous)
            if not final and not (b <= end - self.guard and stable):
                break  # in order: nothing after an uncertain gloss is committed yet
            self._commit(GlossSpan(gloss, confidence, a, b))
        self.previous = [(g, a, b) for g, a, b, _ in spans]

    def _commit(self, span: GlossSpan) -> None:
        last_row = min(span.end_frame, self.rows) - 1
        captured = max((w for r, w in self.captured_at.items() if r <= last_row), default=time.perf_counter())
        caption = Caption(span.gloss, span.confidence, span.start_frame / self.fps, (last_row + 1) / self.fps,
                          time.perf_counter() - captured)
        self.committed_until = span.end_frame
        self.result.captions.append(caption)
        if self.on_caption is not None:
            self.on_caption(caption)


def warm_tracker() -> HolisticTracker:
    """A Holistic graph that has already run once: its first frame loads the models (~1 s), which
    must happen before the camera starts, not while its frames are skipped."""
    from signkd.features.workers import quiet_native_logs

    with quiet_native_logs():
        tracker = HolisticTracker()
        tracker.process(np.zeros((260, 210, 3), np.uint8))
    return tracker


def run_live(slot: LatestFrame, recognizer: LiveRecognizer, tracker: HolisticTracker) -> LiveResult:
    """Take frames from `slot` until its source ends: MediaPipe on each, then the recogniser."""
    from signkd.features.workers import quiet_native_logs

    live = recognizer
    with tracker, quiet_native_logs():
        while (taken := slot.take()) is not None:
            video_time, wall, frame = taken
            live.frame_size = live.frame_size or (int(frame.shape[0]), int(frame.shape[1]))
            t = time.perf_counter()
            points, mask = tracker.process(frame)
            live.result.mediapipe_s.append(time.perf_counter() - t)
            live.result.frames_processed += 1
            live.add(video_time, wall, points, mask)
    live.result.frames_published = slot.published
    return live.finish()


def stream_file(model: str | Path, path: Path, fps: float | None = None, **options) -> LiveResult:
    """`signkd live --stream`: play `path` at its own rate and caption it live."""
    recognizer, tracker, slot = LiveRecognizer(model, **options), warm_tracker(), LatestFrame()
    play_file(path, slot, fps)
    return run_live(slot, recognizer, tracker)
