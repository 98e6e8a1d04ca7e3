"""Live captions: frames land on the model's grid by capture time, skipped frames are strides,
glosses are committed once, in order, when two windows agree and the sign is complete."""

from __future__ import annotations

import numpy as np
import pytest

from signkd import live
from signkd.features.keypoints import NUM_JOINTS
from signkd.recognize import GlossSpan
from tests.test_cli import _deployable


def _frame(seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
    return np.full((NUM_JOINTS, 3), 0.5, np.float32), np.full(NUM_JOINTS, seen)


def test_the_newest_frame_wins_when_the_recogniser_is_slow():
    slot = live.LatestFrame()
    for i in range(5):
        slot.put(i / 25, np.full((2, 2, 3), i, np.uint8))
    slot.close()
    video_time, _, frame = slot.take()
    assert video_time == pytest.approx(4 / 25) and frame[0, 0, 0] == 4  # frames 0-3 were skipped, not queued
    assert slot.take() is None and slot.published == 5


def test_frames_land_on_the_models_grid_by_capture_time(tmp_path):
    rec = live.LiveRecognizer(_deployable(tmp_path), window_s=100.0, hop_s=100.0)  # no window runs here
    for i in range(0, 12):  # a 50 fps camera: two frames per 25 fps row, the second is dropped
        rec.add(i / 50, 0.0, *_frame())
    assert len(rec.landmarks) == 7 and rec.result.strides == [1] * 6  # rows 0-6
    for t in (0.36, 0.48):  # MediaPipe took 3 rows' time per frame: rows 7, 8 stay empty
        rec.add(t, 0.0, *_frame())
    assert rec.result.strides[-2:] == [3, 3] and not np.stack(rec.mask)[[7, 8, 10, 11]].any()


def test_a_gloss_is_committed_once_in_order_when_two_windows_agree(tmp_path, monkeypatch):
    """Scripted windows (what the model would align, in absolute grid rows): A is seen twice away
    from the edge and committed; B at the edge waits; C, seen once, only at the end of the stream."""
    script = iter([[("A", 0, 4)], [("A", 0, 4), ("B", 18, 24)], [("A", 1, 5), ("B", 16, 20)],
                   [("A", 0, 4), ("B", 16, 20), ("C", 36, 40)], [("A", 0, 4), ("B", 16, 20), ("C", 36, 40)]])
    windows = []

    def scripted(log_probs, hyp, vocab):
        spans = next(script)
        start = windows[-1]
        return [GlossSpan(g, 0.9, a - start, b - start) for g, a, b in spans]

    rec = live.LiveRecognizer(_deployable(tmp_path), window_s=10.0, hop_s=0.48, guard_s=0.16)  # hop 12 rows, guard 4
    real_window = rec._window
    monkeypatch.setattr(rec, "_window", lambda end, final: (windows.append(max(0, end - rec.window)), real_window(end, final)))
    monkeypatch.setattr("signkd.recognize.gloss_spans", scripted)  # inside read_glosses, the model step
    committed = []
    rec.on_caption = lambda c: committed.append((c.gloss, len(windows)))
    for row in range(48):  # windows end at rows 12, 24, 36, 48, then once more at the end of the stream
        rec.add(row / 25, 0.0, *_frame())
    assert committed == [("A", 2), ("B", 3)], "A after two windows; B once no longer at the edge and seen twice"
    result = rec.finish()
    assert result.glosses == ["A", "B", "C"] and committed[-1] == ("C", 5), "C only when the stream ends"
    assert len(windows) == 5


def test_a_long_stream_keeps_only_what_the_next_window_reads(tmp_path):
    rec = live.LiveRecognizer(_deployable(tmp_path), window_s=3.0, hop_s=0.5)
    for row in range(25 * 120):  # two minutes of a camera
        rec.add(row / 25, 0.0, *_frame(seen=False))
    assert rec.rows == 3000 and len(rec.landmarks) <= rec.window + rec.hop and len(rec.captured_at) <= rec.window + rec.hop
