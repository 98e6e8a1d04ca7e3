"""Frame reading: natural order, video files, and errors that name the path."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from signkd.features.frames import FrameSourceError, count_frames, iter_frames


def _frame(value: int, height: int = 24, width: int = 16) -> np.ndarray:
    return np.full((height, width, 3), value, np.uint8)


def _write_video(path, frames, fourcc: str = "mp4v") -> None:
    height, width = frames[0].shape[:2] if frames else (24, 16)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()


def test_folder_is_read_in_natural_order(tmp_path):
    for index in (10, 2, 1):
        cv2.imwrite(str(tmp_path / f"frame{index}.png"), _frame(index * 10))
    (tmp_path / "notes.txt").write_text("not a frame")
    frames = list(iter_frames(tmp_path))
    assert [int(f[0, 0, 0]) for f in frames] == [10, 20, 100]
    assert all(f.dtype == np.uint8 and f.shape == (24, 16, 3) for f in frames)
    assert count_frames(tmp_path) == 3


def test_grayscale_and_jpg_frames_come_back_as_bgr(tmp_path):
    cv2.imwrite(str(tmp_path / "0.png"), np.full((8, 6), 50, np.uint8))
    cv2.imwrite(str(tmp_path / "1.jpg"), _frame(200, 8, 6))
    frames = list(iter_frames(str(tmp_path)))
    assert [f.shape for f in frames] == [(8, 6, 3), (8, 6, 3)]


def test_mp4_video_is_streamed(tmp_path):
    path = tmp_path / "clip.mp4"
    _write_video(path, [_frame(v) for v in (0, 80, 160, 240)])
    frames = iter_frames(path)
    first = next(frames)
    assert first.shape == (24, 16, 3) and first.dtype == np.uint8
    assert len(list(frames)) == 3
    assert count_frames(path) == 4


def test_one_frame_video(tmp_path):
    path = tmp_path / "one.avi"
    _write_video(path, [_frame(120)], fourcc="MJPG")
    assert len(list(iter_frames(path))) == 1
    assert count_frames(path) == 1


def test_missing_path_names_it(tmp_path):
    with pytest.raises(FrameSourceError, match="does-not-exist.*does not exist"):
        list(iter_frames(tmp_path / "does-not-exist"))


def test_empty_folder(tmp_path):
    with pytest.raises(FrameSourceError, match="contains no images"):
        list(iter_frames(tmp_path))
    with pytest.raises(FrameSourceError, match="contains no images"):
        count_frames(tmp_path)


def test_corrupt_image_fails_only_when_reached(tmp_path):
    cv2.imwrite(str(tmp_path / "1.png"), _frame(1))
    (tmp_path / "2.png").write_bytes(np.random.default_rng(0).bytes(300))
    frames = iter_frames(tmp_path)
    assert next(frames)[0, 0, 0] == 1  # streamed: the good frame arrives before the bad one is read
    with pytest.raises(FrameSourceError, match=r"2\.png.*corrupt"):
        next(frames)


def test_truncated_image(tmp_path):
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), (np.random.default_rng(1).random((40, 30, 3)) * 255).astype(np.uint8))
    data = good.read_bytes()
    good.unlink()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(FrameSourceError, match="cut.png"):
        list(iter_frames(tmp_path))


def test_unopenable_video(tmp_path):
    path = tmp_path / "garbage.mp4"
    path.write_bytes(np.random.default_rng(2).bytes(500))
    with pytest.raises(FrameSourceError, match="cannot open video .*garbage.mp4"):
        list(iter_frames(path))


def test_video_without_frames(tmp_path):
    path = tmp_path / "empty.avi"
    _write_video(path, [], fourcc="MJPG")
    with pytest.raises(FrameSourceError, match="empty.avi"):
        list(iter_frames(path))
    with pytest.raises(FrameSourceError, match="empty.avi"):
        count_frames(path)


def test_unsupported_file(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("a|b\n")
    with pytest.raises(FrameSourceError, match="neither a frame folder nor a video"):
        list(iter_frames(path))
