"""Run a per-video feature extractor over a dataset: worker pool, resumable cache, error policy.

Keypoint and flow extraction share this so that both resume the same way after an interruption
(a finished video's `.npz` is complete because writes are atomic, so it is simply kept), report
failures the same way, and give identical files for any worker count (each video is computed
independently and written under its own name).

The cache survives DVC reruns (the stage's output is `persist: true`), so a kept file must be
proven to come from the current input: each output stores two fingerprints of its source, taken
before it was read. `source_stat` (sha1 of the frame file names, sizes and mtimes) is checked
first and costs a few `stat` calls; only when it differs is `source_sha1` (sha1 of the names and
bytes) compared, because a re-rendered corpus or a `dvc checkout` gives new mtimes to identical
frames, and recomputing those would waste hours of MediaPipe on real datasets. Outputs whose id
is no longer among the samples are deleted, so a shrunk corpus leaves no stale files behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import time
import zipfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from tqdm.auto import tqdm

from signkd.data.manifest import Sample
from signkd.features.frames import list_image_files
from signkd.io import load_npz, save_npz

ON_ERROR_CHOICES = ("fail", "skip")

# compute(source) -> arrays to store; summarize(arrays) -> small per-video stats, raising
# ValueError when stored arrays do not match the current settings (then they are recomputed).
# refresh(arrays) -> arrays brought up to the current settings without recomputing (cheap derived
# arrays), or None when they are current.
Compute = Callable[[Path], dict[str, np.ndarray]]
Summarize = Callable[[dict[str, np.ndarray]], dict]
Refresh = Callable[[dict[str, np.ndarray]], "dict[str, np.ndarray] | None"]

STAT_KEY, CONTENT_KEY = "source_stat", "source_sha1"
FINGERPRINT_KEYS = (STAT_KEY, CONTENT_KEY)  # stored in every output beside the extractor's arrays
_READ_CHUNK = 1 << 20


class ExtractionError(RuntimeError):
    """A video failed under on_error='fail'; the message names the video, its path and the cause."""


@dataclass
class VideoResult:
    id: str
    split: str
    source: str
    status: str  # "processed" | "cached" | "skipped"
    summary: dict = field(default_factory=dict)
    reason: str = ""
    seconds: float = 0.0


@dataclass
class RunReport:
    """Per-video outcomes in sample order, plus the wall time spent on videos not cached."""

    results: list[VideoResult]
    seconds: float

    def with_status(self, status: str) -> list[VideoResult]:
        return [r for r in self.results if r.status == status]

    @property
    def done(self) -> list[VideoResult]:
        """Videos whose output exists now (computed in this run or found in the cache)."""
        return [r for r in self.results if r.status != "skipped"]

    removed_stale: list[str] = field(default_factory=list)

    def base_stats(self) -> dict:
        skipped = self.with_status("skipped")
        return {
            "videos": len(self.results),
            "processed": len(self.with_status("processed")),
            "cached": len(self.with_status("cached")),
            "skipped": len(skipped),
            "removed_stale": len(self.removed_stale),
            "skipped_videos": [{"id": r.id, "source": r.source, "reason": r.reason} for r in skipped],
            "seconds": round(self.seconds, 3),
        }


def validate_options(workers: int, on_error: str) -> None:
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if on_error not in ON_ERROR_CHOICES:
        raise ValueError(f"on_error must be one of {', '.join(ON_ERROR_CHOICES)}, got {on_error!r}")


def output_path(out_dir: str | Path, sample_id: str) -> Path:
    return Path(out_dir) / f"{sample_id}.npz"


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


def _fingerprints(source: Path) -> dict[str, np.ndarray]:
    stat, content = stat_fingerprint(source), content_fingerprint(source)
    if stat is None or content is None:
        return {}  # stored without: never reused, which is safe
    return {STAT_KEY: np.asarray(stat), CONTENT_KEY: np.asarray(content)}


def _load_cached(path: Path, source: str, refresh: Refresh | None) -> tuple[dict | None, bool]:
    """(arrays of a finished output made from this very source, whether they must be re-saved);
    (None, False) when absent, unreadable or made from other input."""
    try:
        arrays = load_npz(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None, False
    if not set(FINGERPRINT_KEYS) <= arrays.keys():
        return None, False
    stat = stat_fingerprint(source)
    if stat is None:
        return None, False
    dirty = False
    if str(arrays[STAT_KEY]) != stat:
        if content_fingerprint(source) != str(arrays[CONTENT_KEY]):
            return None, False
        arrays[STAT_KEY] = np.asarray(stat)  # same frames, new mtimes: check cheaply next time
        dirty = True
    if refresh is not None:
        try:
            updated = refresh(arrays)
        except (ValueError, KeyError, IndexError, TypeError):  # arrays of another kind entirely
            return None, False
        if updated is not None:
            arrays, dirty = updated, True
    return arrays, dirty


def _cached_summary(path: Path, source: str, summarize: Summarize, refresh: Refresh | None) -> dict | None:
    """Summary of a reusable output (re-saved when refreshed), or None: then it must be recomputed."""
    if not path.is_file():
        return None
    arrays, dirty = _load_cached(path, source, refresh)
    if arrays is None:
        return None
    try:
        summary = summarize(arrays)
    except (ValueError, KeyError):
        return None
    if dirty:
        save_npz(path, **arrays)
    return summary


def _remove_stale_outputs(out_dir: Path, samples: list[Sample]) -> list[str]:
    """Delete outputs whose id is not among the samples (a video dropped from the corpus)."""
    keep = {output_path(out_dir, s.id) for s in samples}
    stale = sorted(p for p in out_dir.glob("*.npz") if p not in keep)
    for path in stale:
        path.unlink(missing_ok=True)
    return [p.stem for p in stale]


def _remove_stale_temporaries(out_dir: Path) -> None:
    """Temporaries of a killed run (atomic writes never renamed into place) are garbage."""
    for tmp in out_dir.glob(".*.npz.*.tmp"):
        tmp.unlink(missing_ok=True)


def _run_one(task: tuple) -> tuple[int, dict | None, str, float]:
    """Worker body: compute, summarise, save atomically; an error comes back as text, not a traceback."""
    index, _, source, out_path, compute, summarize = task
    start = time.perf_counter()
    try:
        fingerprints = _fingerprints(Path(source))  # before reading: a change during compute shows next time
        arrays = compute(Path(source))
        reserved = set(arrays) & set(FINGERPRINT_KEYS)
        if reserved:
            raise ValueError(f"extractor output uses reserved names {sorted(reserved)}")
        summary = summarize(arrays)  # before saving: arrays it rejects are never cached
        save_npz(out_path, **arrays, **fingerprints)
    except Exception as exc:  # reported per video by the parent, under the on_error policy
        return index, None, f"{type(exc).__name__}: {exc}", time.perf_counter() - start
    return index, summary, "", time.perf_counter() - start


def _init_worker() -> None:
    """One OpenCV thread per worker process: N workers on N cores, not N x cores threads."""
    import cv2

    cv2.setNumThreads(1)


def _pool_results(tasks: list[tuple], workers: int) -> Iterator[tuple[int, dict | None, str, float]]:
    if not tasks:
        return
    if workers == 1:
        yield from map(_run_one, tasks)
        return
    # spawn: MediaPipe and OpenCV hold threads and graph state that do not survive fork safely.
    # ProcessPoolExecutor, not multiprocessing.Pool: a worker killed by the OS (out of memory)
    # breaks the executor with an error, where a Pool would wait for its lost task forever.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=context, initializer=_init_worker) as pool:
        futures = {pool.submit(_run_one, task): task for task in tasks}
        try:
            for future in as_completed(futures):
                try:
                    yield future.result()
                except BrokenProcessPool:
                    unfinished = [futures[f][1:3] for f in futures if not f.done() or f.exception() is not None]
                    raise ExtractionError(
                        f"a worker process died (killed by the system, e.g. out of memory, or crashed in "
                        f"native code) with {len(unfinished)} videos unfinished, among them "
                        f"'{unfinished[0][0]}' ({unfinished[0][1]}). "
                        "Finished videos are kept, so re-running resumes; use fewer workers if it recurs."
                    ) from None
        finally:
            for future in futures:  # on failure or interruption: start nothing new
                future.cancel()


def run_per_video(
    samples: list[Sample],
    out_dir: str | Path,
    compute: Compute,
    summarize: Summarize,
    *,
    workers: int,
    on_error: str = "fail",
    progress: bool = True,
    desc: str = "extract",
    refresh: Refresh | None = None,
) -> RunReport:
    """Write `out_dir/{id}.npz` for every sample without a reusable output; see the module docstring.

    A sample's frames_dir is read as given (relative paths from the current directory, which
    is the repository root under DVC). `compute` and `summarize` must be picklable (module-level
    functions or functools.partial of them) because workers are spawned processes. An output that
    cannot be reused is deleted before its video is recomputed, so a video skipped under
    on_error='skip' never keeps an output from older input.
    """
    validate_options(workers, on_error)
    duplicates = sorted(i for i, n in Counter(s.id for s in samples).items() if n > 1)
    if duplicates:
        raise ValueError(f"sample ids must be unique (each names an output file); repeated: {duplicates[:5]}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(out_dir)
    removed = _remove_stale_outputs(out_dir, samples)

    results: list[VideoResult | None] = [None] * len(samples)
    tasks = []
    for index, sample in enumerate(samples):
        path = output_path(out_dir, sample.id)
        summary = _cached_summary(path, sample.frames_dir, summarize, refresh)
        if summary is not None:
            results[index] = VideoResult(sample.id, sample.split, sample.frames_dir, "cached", summary)
        else:
            path.unlink(missing_ok=True)
            tasks.append((index, sample.id, sample.frames_dir, path, compute, summarize))

    start = time.perf_counter()
    bar = tqdm(total=len(samples), initial=len(samples) - len(tasks), desc=desc, unit="video",
               disable=not progress, dynamic_ncols=True)
    try:
        # closing(): a failure stops the pool at once, not when the traceback is garbage-collected.
        with contextlib.closing(_pool_results(tasks, workers)) as outcomes:
            for index, summary, error, seconds in outcomes:
                sample = samples[index]
                if error:
                    if on_error == "fail":
                        raise ExtractionError(
                            f"{desc} failed for video '{sample.id}' ({sample.frames_dir}): {error}. "
                            "Fix or remove this video, or set on_error: skip to leave it out and go on."
                        )
                    results[index] = VideoResult(sample.id, sample.split, sample.frames_dir, "skipped",
                                                 reason=error, seconds=seconds)
                else:
                    results[index] = VideoResult(sample.id, sample.split, sample.frames_dir, "processed",
                                                 summary, seconds=seconds)
                bar.update(1)
    finally:
        bar.close()
    return RunReport([r for r in results if r is not None], time.perf_counter() - start, removed)
