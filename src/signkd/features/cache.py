"""The per-video extraction cache's keys: what proves a kept `.npz` is what extraction would write now.

An output is kept only when its stored `source_sha1` equals the sha1 of the video's frame files
(names and bytes) and its `extractor_settings` equal the extractor's current settings and version
(JSON). Modification times never decide: `SourceIndex` uses names, sizes and mtimes only to skip
re-hashing frames that look unchanged, and keeps that knowledge in a side file beside the output
folder, so no output is rewritten because a file was touched or checked out again.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from signkd.data.manifest import Sample
from signkd.features.frames import list_image_files
from signkd.io import load_npz, save_npz, write_json

# summarize(arrays) -> small per-video stats, raising ValueError when stored arrays do not match
# the current settings (then they are recomputed). refresh(arrays) -> arrays brought up to the
# current settings without recomputing (cheap derived arrays), or None when they are current.
Summarize = Callable[[dict[str, np.ndarray]], dict]
Refresh = Callable[[dict[str, np.ndarray]], "dict[str, np.ndarray] | None"]

CONTENT_KEY, SETTINGS_KEY = "source_sha1", "extractor_settings"
FINGERPRINT_KEYS = (CONTENT_KEY, SETTINGS_KEY)  # stored in every output beside the extractor's arrays
# Older outputs stored a stat fingerprint (with mtimes) here; it is never read back now. Kept as a
# name because files supplied from outside (signkd.data.custom) may carry it.
STAT_KEY = "source_stat"
# An output supplied from outside (the user's precomputed keypoints, signkd.data.custom) carries
# this key: it was not made by the extractor, so it is valid under any extractor settings.
EXTERNAL_KEY = "imported_from"
RESERVED_KEYS = (*FINGERPRINT_KEYS, STAT_KEY, EXTERNAL_KEY)
_READ_CHUNK = 1 << 20


def _source_files(source: Path) -> list[Path]:
    return list_image_files(source) if source.is_dir() else [source]


def stat_fingerprint(source: str | Path) -> str | None:
    """sha1 of the source's frame file names, sizes and mtimes; None when it cannot be listed
    (the extractor then reports why, in its own words)."""
    digest = hashlib.sha1()
    try:
        for path in _source_files(Path(source)):
            st = path.stat()
            digest.update(f"{path.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    except (OSError, RuntimeError):
        return None
    return digest.hexdigest()


def content_fingerprint(source: str | Path) -> str | None:
    """sha1 of the source's frame file names and bytes; None when it cannot be read."""
    digest = hashlib.sha1()
    try:
        for path in _source_files(Path(source)):
            digest.update(f"{path.name}\0".encode())
            with open(path, "rb") as f:
                while chunk := f.read(_READ_CHUNK):
                    digest.update(chunk)
    except (OSError, RuntimeError):
        return None
    return digest.hexdigest()


def settings_json(settings: dict) -> str:
    """The canonical text stored as an output's `extractor_settings`."""
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))


def _index_path(out_dir: Path) -> Path:
    return out_dir.parent / f".{out_dir.name}.sources.json"


class SourceIndex:
    """Each video's content sha1 with the stat fingerprint it was computed under (see the module
    docstring): a shortcut past hashing unchanged frames, never a reason to keep an output."""

    def __init__(self, out_dir: Path):
        self.path = _index_path(out_dir)
        try:
            entries = json.loads(self.path.read_text(encoding="utf-8"))["sources"]
            self.entries = {k: v for k, v in entries.items() if isinstance(v, dict)}
        except (OSError, ValueError, KeyError, TypeError):
            self.entries = {}
        self.changed = False

    def content(self, sample: Sample) -> str | None:
        """sha1 of the sample's frames; hashed again only when their names, sizes or mtimes changed."""
        stat = stat_fingerprint(sample.frames_dir)
        if stat is None:
            return None
        known = self.entries.get(sample.id) or {}
        if known.get("source") == sample.frames_dir and known.get("stat") == stat and known.get("sha1"):
            return known["sha1"]
        sha1 = content_fingerprint(sample.frames_dir)
        if sha1 is not None:
            self.record(sample, stat, sha1)
        return sha1

    def record(self, sample: Sample, stat: str | None, sha1: str | None) -> None:
        if stat and sha1:
            self.entries[sample.id] = {"source": sample.frames_dir, "stat": stat, "sha1": sha1}
            self.changed = True

    def save(self, samples: list[Sample]) -> None:
        keep = {s.id for s in samples}
        if self.changed or set(self.entries) - keep:
            write_json(self.path, {"sources": {k: v for k, v in self.entries.items() if k in keep}})


def load_cached(path: Path, sha1: str, settings: str, refresh: Refresh | None) -> tuple[dict | None, bool]:
    """(arrays of a finished output made from these very frames under these settings, whether they
    must be re-saved); (None, False) when absent, unreadable or made from other input or settings."""
    try:
        arrays = load_npz(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None, False
    if CONTENT_KEY not in arrays or str(arrays[CONTENT_KEY]) != sha1:
        return None, False
    if EXTERNAL_KEY not in arrays and (SETTINGS_KEY not in arrays or str(arrays[SETTINGS_KEY]) != settings):
        return None, False
    dirty = False
    if refresh is not None:
        try:
            updated = refresh(arrays)
        except (ValueError, KeyError, IndexError, TypeError):  # arrays of another kind entirely
            return None, False
        if updated is not None:
            arrays, dirty = updated, True
    return arrays, dirty


def cached_summary(path: Path, sample: Sample, index: SourceIndex, settings: str, summarize: Summarize,
                    refresh: Refresh | None) -> dict | None:
    """Summary of a reusable output (re-saved only when refreshed), or None: then it must be recomputed."""
    if not path.is_file():
        return None
    sha1 = index.content(sample)
    if sha1 is None:
        return None
    arrays, dirty = load_cached(path, sha1, settings, refresh)
    if arrays is None:
        return None
    try:
        summary = summarize(arrays)
    except (ValueError, KeyError):
        return None
    if dirty:
        save_npz(path, **arrays)
    return summary
