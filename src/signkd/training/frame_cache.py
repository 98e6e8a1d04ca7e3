"""Decoded, resized video frames kept on disk, one `.npy` per video and frame size.

Training reads every video once per epoch. On the default corpus a model's input is 32x26 while
the stored frames are 210x260 PNGs, so decoding them every epoch would cost more than the
training step itself (~1.2 ms a frame on one core); the resized frames are a few KB per video and
are written once. At Phoenix scale (224x224, ~120 GB for the training videos) the cache is off
(`loader.frame_cache: ""`) and DataLoader workers decode the PNGs instead.

A cache file is named by a hash of everything that shapes it: the source's path, its files'
names, sizes and modification times, the target size and this module's format version, so that
a re-rendered video or another frame size never reads a stale entry. Files are written atomically
(several DataLoader workers or DDP ranks may fill the cache at once).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

import numpy as np

FORMAT_VERSION = 1


def source_fingerprint(frames_dir: str | os.PathLike) -> str:
    """Names, sizes and mtimes of a frame folder's files (or of one video file)."""
    path = Path(frames_dir)
    if path.is_dir():
        entries = sorted(os.scandir(path), key=lambda e: e.name)
        stats = [(e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in entries if e.is_file()]
    else:
        st = path.stat()
        stats = [(path.name, st.st_size, st.st_mtime_ns)]
    return repr((str(path.resolve()), stats))


def cache_path(cache_dir: Path, frames_dir: str, size: tuple[int, int]) -> Path:
    key = hashlib.sha256(f"{FORMAT_VERSION}|{size}|{source_fingerprint(frames_dir)}".encode()).hexdigest()[:24]
    return cache_dir / f"{size[0]}x{size[1]}" / f"{key}.npy"


def cached_video(frames_dir: str, size: tuple[int, int], cache_dir: Path,
                 decode: Callable[[str, int, int], np.ndarray]) -> np.ndarray:
    """The video's frames at `size` ([T, 3, H, W] uint8): from the cache, or decoded and stored."""
    path = cache_path(Path(cache_dir), frames_dir, size)
    if path.is_file():
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError):
            pass  # a damaged entry (e.g. a full disk): decode again and overwrite it
    video = decode(frames_dir, *size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, video, allow_pickle=False)
    os.replace(tmp, path)
    return video
