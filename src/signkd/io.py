"""Atomic file output: a stage interrupted mid-write never leaves a file that looks complete.

Every writer goes to a temporary sibling first and is renamed into place only when done;
`os.replace` is atomic on POSIX within one filesystem. `tempfile` creates its files 0600 and
folders 0700 (private to the owner); they are given the modes a plain `open`/`mkdir` would
(0666/0777 less the umask) before the rename, so a team sharing a machine can read the outputs.
`.npz` files are written byte-for-byte deterministically (fixed zip timestamps), so the same
arrays always give the same file and DVC sees no change when nothing changed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

# zip entries carry a modification time; a fixed one keeps equal arrays byte-identical on disk
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def _umask() -> int:
    """The process umask (read without changing it where /proc allows; else set and restored)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _publish_mode(path: Path, directory: bool) -> None:
    """Give a tempfile-made path the mode a plain open()/mkdir() would have given it."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _publish_mode(tmp_path, directory=False)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory next to `path`; it replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        _publish_mode(tmp, directory=True)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


class NotUtf8(ValueError):
    """A file's bytes are not UTF-8; `line` (1-based) and `byte` say where, for a one-line error."""

    def __init__(self, line: int, byte: int):
        super().__init__(f"line {line}: byte 0x{byte:02x} is not UTF-8")
        self.line, self.byte = line, byte


def decode_utf8(raw: bytes, encoding: str = "utf-8") -> str:
    """`raw` decoded, or NotUtf8 naming the line of the first bad byte (Python's error gives an offset)."""
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as err:
        raise NotUtf8(raw[:err.start].count(b"\n") + 1, raw[err.start]) from None


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Compressed npz, written atomically and deterministically: the layout np.savez_compressed
    writes (one `<name>.npy` entry per array, in the given order), without its wall-clock
    timestamps, so equal arrays give equal bytes. Pickled objects are refused."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, value in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load arrays without pickle, so a tampered file cannot run code."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
