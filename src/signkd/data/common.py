"""What every dataset reader shares: its errors, frame counting and `|`-separated annotation files.

Kept apart from the readers so that each reader module imports only this one (and the manifest),
never another reader; `signkd.data.registry` is the one place that knows them all.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from signkd.errors import InputError
from signkd.features.frames import VIDEO_SUFFIXES, FrameSourceError
from signkd.features.frames import count_frames as _decode_count
from signkd.io import NotUtf8, decode_utf8

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_MAX_LISTED = 5


class DatasetError(InputError, ValueError):
    """The dataset tree is not in the expected layout; the message says what to fix."""


class DatasetFileMissing(DatasetError, FileNotFoundError):
    """An annotation file, video or frame folder the layout requires is absent."""


def count_frames(source: str | os.PathLike) -> int:
    """Frames of a video: image files directly in a folder (one listing), or a video file's decoded
    frames (container headers can be wrong); 0 if absent or unreadable."""
    path = Path(source)
    if path.is_file():
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            return 0
        try:
            return _decode_count(path)
        except FrameSourceError:
            return 0
    try:
        with os.scandir(path) as entries:
            return sum(1 for e in entries if e.name.lower().endswith(IMAGE_SUFFIXES) and e.is_file())
    except (FileNotFoundError, NotADirectoryError):
        return 0


def find_root(root: Path, rel: Path, label: str, *, hint: str, prefer: str | None = None) -> Path:
    """The folder holding the marker file `rel`: `root` itself or up to two levels below.

    Archives unpack with one or two wrapper folders (e.g. `PHOENIX-2014-T-release-v3/PHOENIX-2014-T`),
    so users may point at any of them. Several matches are an error unless exactly one folder
    name contains `prefer`.
    """
    if not root.is_dir():
        raise DatasetFileMissing(f"{label} root {root} does not exist or is not a folder; set data.raw_dir to the unpacked dataset")
    for level in ([root], root.glob("*"), root.glob("*/*")):
        found = sorted(p for p in level if (p / rel).is_file())
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            preferred = [p for p in found if prefer and prefer in p.name]
            if len(preferred) == 1:
                return preferred[0]
            raise DatasetError(
                f"several {label} copies under {root}: {', '.join(map(str, found))}; point the raw root at one of them"
            )
    raise DatasetFileMissing(f"{label} annotation file {root / rel} is missing (also looked one and two folders below {root}); {hint}")


def read_annotation(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """Rows of a `|`-separated corpus file with their line numbers, after checking its header."""
    if not path.is_file():
        raise DatasetFileMissing(f"annotation file {path} is missing; the dataset archive looks incomplete, unpack it again")
    try:
        text = decode_utf8(path.read_bytes(), "utf-8-sig")
    except NotUtf8 as err:
        raise DatasetError(f"{path}:{err.line}: byte 0x{err.byte:02x} is not UTF-8; re-save the file as UTF-8 "
                           "(e.g. iconv -f latin1 -t utf-8) or retype that line") from None
    with io.StringIO(text, newline="") as f:
        reader = csv.reader(f, delimiter="|", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if not header:
            raise DatasetError(f"annotation file {path} is empty; expected a header {'|'.join(columns)} and one line per video")
        header = [h.strip() for h in header]
        missing = [c for c in columns if c not in header]
        if missing:
            raise DatasetError(
                f"annotation file {path} lacks column(s) {', '.join(missing)} (header is {'|'.join(header)}, "
                f"expected at least {'|'.join(columns)}); is this the right dataset for data.dataset?"
            )
        rows = []
        for line_no, fields in enumerate(reader, start=2):
            if not any(x.strip() for x in fields):
                continue
            if len(fields) != len(header):
                raise DatasetError(
                    f"{path}:{line_no} has {len(fields)} fields, the header has {len(header)}; the file is damaged"
                )
            rows.append((line_no, {h: v.strip() for h, v in zip(header, fields)}))
    if not rows:
        raise DatasetError(f"annotation file {path} has a header but no videos; the dataset archive looks incomplete")
    return rows


def listing(items: list[str]) -> str:
    """The first few items of a problem list, and how many more there are."""
    more = f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return "; ".join(items[:_MAX_LISTED]) + more
