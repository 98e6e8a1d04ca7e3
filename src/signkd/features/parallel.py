"""Run a per-video feature extractor over a dataset: worker pool, resumable cache, error policy.

Keypoint and flow extraction share this so that both resume the same way after an interruption
(a finished video's `.npz` is complete because writes are atomic, so it is simply kept), report
failures the same way, and give identical files for any worker count (each video is computed
independently and written under its own name).

The cache survives DVC reruns (the stage's output is `persist: true`), so a kept file must be
proven to come from the current input and the current extractor: each output stores
`source_sha1` (sha1 of its frame files' names and bytes, taken before they were read) and
`extractor_settings` (the extractor's settings and version, as JSON). Both must match for the file
to be kept; modification times never decide anything, so re-rendered or checked-out frames with
the same bytes reuse every file and no output byte changes. Hashing every frame of a large corpus
takes minutes, so a side index beside the output folder (`.<name>.sources.json`, not part of the
output) remembers each video's sha1 together with its files' names, sizes and mtimes, and the hash
is recomputed only for videos whose files look different. Outputs whose id is no longer among the
samples are deleted, so a shrunk corpus leaves no stale files behind.

Workers end with the stage, and MediaPipe's native log lines are filtered out of the terminal
(see `signkd.features.workers`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Generator, cast

import numpy as np
from tqdm.auto import tqdm

from signkd.data.manifest import Sample
from signkd.errors import InputError
from signkd.features.cache import (  # noqa: F401 - CONTENT_KEY, STAT_KEY, EXTERNAL_KEY: re-exported
    CONTENT_KEY,
    EXTERNAL_KEY,
    FINGERPRINT_KEYS,
    RESERVED_KEYS,
    SETTINGS_KEY,
    STAT_KEY,
    Refresh,
    SourceIndex,
    Summarize,
    cached_summary,
    content_fingerprint,
    settings_json,
    stat_fingerprint,
)
from signkd.features.workers import die_with_parent, quiet_native_logs
from signkd.io import save_npz, write_json

log = logging.getLogger(__name__)

ON_ERROR_CHOICES = ("fail", "skip")

# compute(source) -> arrays to store; summarize and refresh: see signkd.features.cache
Compute = Callable[[Path], dict[str, np.ndarray]]
SKIP_REPORT = "skipped.json"


class ExtractionError(InputError, RuntimeError):
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
            "skipped_videos": [{"id": r.id, "split": r.split, "source": r.source, "reason": r.reason}
                               for r in skipped],
            "seconds": round(self.seconds, 3),
        }


def validate_options(workers: int, on_error: str) -> None:
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if on_error not in ON_ERROR_CHOICES:
        raise ValueError(f"on_error must be one of {', '.join(ON_ERROR_CHOICES)}, got {on_error!r}")


def output_path(out_dir: str | Path, sample_id: str) -> Path:
    return Path(out_dir) / f"{sample_id}.npz"


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


# A worker's answer: (index, summary or None, error text, seconds, stat fingerprint, content sha1)
Outcome = tuple[int, "dict | None", str, float, "str | None", "str | None"]


def _run_one(task: tuple) -> Outcome:
    """Worker body: compute, summarise, save atomically; an error comes back as text, not a traceback."""
    index, _, source, out_path, compute, summarize, settings = task
    start = time.perf_counter()
    stat = sha1 = None
    try:
        # fingerprints before reading: frames changed during compute show up as changed next time
        stat, sha1 = stat_fingerprint(source), content_fingerprint(source)
        arrays = compute(Path(source))
        reserved = set(arrays) & set(RESERVED_KEYS)
        if reserved:
            raise ValueError(f"extractor output uses reserved names {sorted(reserved)}")
        summary = summarize(arrays)  # before saving: arrays it rejects are never cached
        fingerprints = {} if stat is None or sha1 is None else {  # stored without: never reused, which is safe
            CONTENT_KEY: np.asarray(sha1), SETTINGS_KEY: np.asarray(settings)}
        save_npz(out_path, **arrays, **fingerprints)
    except Exception as exc:  # reported per video by the parent, under the on_error policy
        return index, None, f"{type(exc).__name__}: {exc}", time.perf_counter() - start, None, None
    return index, summary, "", time.perf_counter() - start, stat, sha1


def _init_worker(parent_pid: int) -> None:
    """Die with the stage; one OpenCV thread per worker process (N workers on N cores, not N x cores)."""
    die_with_parent(parent_pid)
    import cv2

    cv2.setNumThreads(1)


def _pool_results(tasks: list[tuple], workers: int) -> Generator[Outcome, None, None]:
    if not tasks:
        return
    if workers == 1:
        yield from map(_run_one, tasks)
        return
    # spawn: MediaPipe and OpenCV hold threads and graph state that do not survive fork safely.
    # ProcessPoolExecutor, not multiprocessing.Pool: a worker killed by the OS (out of memory)
    # breaks the executor with an error, where a Pool would wait for its lost task forever.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=context, initializer=_init_worker,
                             initargs=(os.getpid(),)) as pool:
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
    settings: dict | None = None,
    quiet: bool = True,
) -> RunReport:
    """Write `out_dir/{id}.npz` for every sample without a reusable output; see the module docstring.

    `settings` describes the extractor (its parameters and version; JSON-serialisable): outputs made
    under other settings are recomputed. A sample's frames_dir is read as given (relative paths
    from the current directory, which is the repository root under DVC). `compute` and `summarize`
    must be picklable (module-level functions or functools.partial of them) because workers are
    spawned processes. An output that cannot be reused is deleted before its video is recomputed,
    so a video skipped under on_error='skip' never keeps an output from older input. `quiet`
    filters MediaPipe/TFLite info lines out of stderr while extracting.
    """
    validate_options(workers, on_error)
    duplicates = sorted(i for i, n in Counter(s.id for s in samples).items() if n > 1)
    if duplicates:
        raise ValueError(f"sample ids must be unique (each names an output file); repeated: {duplicates[:5]}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(out_dir)
    removed = _remove_stale_outputs(out_dir, samples)
    settings_text = settings_json(settings or {})
    index = SourceIndex(out_dir)

    results: list[VideoResult | None] = [None] * len(samples)
    tasks = []
    start = time.perf_counter()
    try:
        for i, sample in enumerate(samples):
            path = output_path(out_dir, sample.id)
            summary = cached_summary(path, sample, index, settings_text, summarize, refresh)
            if summary is not None:
                results[i] = VideoResult(sample.id, sample.split, sample.frames_dir, "cached", summary)
            else:
                path.unlink(missing_ok=True)
                tasks.append((i, sample.id, sample.frames_dir, path, compute, summarize, settings_text))
        start = time.perf_counter()  # the time spent on videos not cached
        with quiet_native_logs(quiet and bool(tasks)) as terminal:
            # the bar counts frames (the manifest's counts), so its ETA holds when video lengths vary
            todo = sum(samples[task[0]].num_frames for task in tasks)
            total = sum(s.num_frames for s in samples)
            _collect(tasks, samples, results, index, workers=workers, on_error=on_error, desc=desc,
                     bar=tqdm(total=total, initial=total - todo, desc=desc, unit="frame", unit_scale=True,
                              disable=not progress, dynamic_ncols=True, file=terminal))
    finally:
        index.save(samples)
    return RunReport([r for r in results if r is not None], time.perf_counter() - start, removed)


def _collect(tasks: list[tuple], samples: list[Sample], results: list, index: SourceIndex, *, workers: int,
             on_error: str, desc: str, bar) -> None:
    """Run the tasks, filling `results` and the source index; raise on the first failure under 'fail'."""
    try:
        # closing(): a failure stops the pool at once, not when the traceback is garbage-collected.
        with contextlib.closing(_pool_results(tasks, workers)) as outcomes:
            for i, summary, error, seconds, stat, sha1 in outcomes:
                sample = samples[i]
                if error:
                    if on_error == "fail":
                        raise ExtractionError(
                            f"{desc} failed for video '{sample.id}' ({sample.frames_dir}): {error}. "
                            "Fix or remove this video, or set on_error: skip to leave it out and go on."
                        )
                    log.warning("%s: skipped video '%s' (%s): %s", desc, sample.id, sample.frames_dir, error)
                    results[i] = VideoResult(sample.id, sample.split, sample.frames_dir, "skipped",
                                             reason=error, seconds=seconds)
                else:
                    index.record(sample, stat, sha1)
                    results[i] = VideoResult(sample.id, sample.split, sample.frames_dir, "processed",
                                             cast(dict, summary), seconds=seconds)  # no error: a summary
                bar.update(sample.num_frames)
    finally:
        bar.close()


def write_skip_report(report_dir: str | Path, stats: dict) -> Path:
    """`<report_dir>/skipped.json`: every video left out under on_error='skip', with its reason
    (an empty list when none was), so a skipped video is never only a count."""
    path = Path(report_dir) / SKIP_REPORT
    write_json(path, list(stats.get("skipped_videos", [])))
    return path


def read_skip_report(report_dir: str | Path) -> dict[str, str]:
    """id -> reason from a stage's skipped.json; {} when there is none or it is unreadable."""
    try:
        entries = json.loads((Path(report_dir) / SKIP_REPORT).read_text(encoding="utf-8"))
        return {str(e["id"]): str(e.get("reason", "")) for e in entries}
    except (OSError, ValueError, KeyError, TypeError):
        return {}
