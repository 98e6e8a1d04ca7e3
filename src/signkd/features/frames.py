"""Read a video's frames one at a time, from a folder of images or a video file.

Datasets store videos as PNG folders (Phoenix) or as video files (CSL-Daily, `recognize` input);
extractors see only an iterator of BGR uint8 frames, so a long video never sits in memory whole.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from signkd.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


class FrameSourceError(InputError, RuntimeError):
    """A frame folder or video file cannot be read; the message names the path and the fix."""


def _natural_key(name: str) -> list:
    """Sort 'frame2' before 'frame10' (plain string order would not)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_image_files(folder: str | Path) -> list[Path]:
    """Image files of a frame folder in natural order; raises if the folder has none."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise FrameSourceError(
            f"frame folder {folder} contains no images ({', '.join(IMAGE_SUFFIXES)}): "
            "check the manifest's frames_dir or re-run the `prepare` stage"
        )
    return sorted(files, key=lambda p: _natural_key(p.name))


def _check_source(source: str | Path) -> Path:
    path = Path(source)
    if not path.exists():
        raise FrameSourceError(
            f"frame source {path} does not exist: check the manifest's frames_dir "
            "(relative paths are resolved from the repository root) or re-run `prepare`"
        )
    if path.is_file() and path.suffix.lower() not in VIDEO_SUFFIXES:
        raise FrameSourceError(
            f"{path} is neither a frame folder nor a video file ({', '.join(VIDEO_SUFFIXES)}): "
            "point frames_dir at a folder of images or at a video"
        )
    return path


def _read_image(path: Path) -> np.ndarray:
    frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if frame is None:
        raise FrameSourceError(
            f"cannot decode image {path} (corrupt, truncated or not an image): "
            "re-extract or re-download this video's frames"
        )
    return frame


def _open_video(path: Path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise FrameSourceError(
            f"cannot open video {path}: the file is corrupt or its codec is not supported "
            "by this OpenCV build; convert it (e.g. ffmpeg -i in -c:v libx264 out.mp4) or "
            "extract it to a folder of PNG frames"
        )
    return cap


def _zero_frame_error(path: Path) -> FrameSourceError:
    return FrameSourceError(
        f"video {path} opened but yielded no frames: the file is empty or truncated; "
        "re-download or re-encode it"
    )


def iter_frames(source: str | Path) -> Iterator[np.ndarray]:
    """Yield BGR uint8 frames [H, W, 3] of a frame folder (natural name order) or video file."""
    path = _check_source(source)
    if path.is_dir():
        for image in list_image_files(path):
            yield _read_image(image)
        return
    cap = _open_video(path)
    try:
        count = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            count += 1
            yield frame
        if count == 0:
            raise _zero_frame_error(path)
    finally:
        cap.release()


def count_frames(source: str | Path) -> int:
    """Number of frames; a video is counted by decoding, since container headers can be wrong."""
    path = _check_source(source)
    if path.is_dir():
        return len(list_image_files(path))
    cap = _open_video(path)
    try:
        count = 0
        while cap.grab():
            count += 1
    finally:
        cap.release()
    if count == 0:
        raise _zero_frame_error(path)
    return count
