"""Extraction worker processes: they die with their parent, and native libraries stay quiet.

Why each part exists:

- A spawned worker blocks on its task queue, and a queue's pipe stays open while any worker
  holds it, so a SIGKILLed stage used to leave its workers (and multiprocessing's resource
  tracker, which waits for them) running for ever, a few hundred MB each. Each worker now asks
  the kernel to kill it when its parent dies (Linux `PR_SET_PDEATHSIG`) and, on any system, a
  watchdog thread exits it when it has been re-parented.
- MediaPipe's graphs and TFLite log through absl/glog straight to file descriptor 2: several
  info/warning lines per video ("Created TensorFlow Lite XNNPACK delegate", "Feedback manager
  requires a model with a single signature"), hundreds per run, which bury the progress bar.
  Environment variables do not silence all of them, so `quiet_native_logs` puts a filter on
  descriptor 2 (inherited by the workers) that drops exactly those info and warning lines and
  passes everything else through: absl/glog errors (E...) and fatal messages (F...), Python
  warnings and tracebacks.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import re
import signal
import sys
import threading
import time
from typing import IO, Iterator

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_WATCH_INTERVAL_S = 0.5

# absl/glog prefix: severity letter, MMDD, time (before absl::InitializeLog its "seconds" are the
# Unix time: `W0000 00:00:1796311656.299942`), thread id, file:line]. I = info, W = warning.
# TFLite writes "INFO: " and the message in two writes, so two workers can interleave them into
# "INFO: INFO: Created ..." and a bare "Created ..." line: both are the same info line.
NOISE = re.compile(
    rb"^(?:[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\] "
    rb"|(?:INFO: )*Created TensorFlow Lite"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR)"
)


def die_with_parent(parent_pid: int) -> None:
    """Make this process end when `parent_pid` (the process that started it) ends."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watchdog below still covers it
    if os.getppid() != parent_pid:  # the parent died before we got here
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="parent-watchdog", daemon=True).start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(_WATCH_INTERVAL_S)
    os._exit(1)


def _pump(read_fd: int, out_fd: int, dropped: list[int]) -> None:
    """Copy lines from `read_fd` to `out_fd`, leaving out the NOISE ones, until end of file."""
    pending = b""
    with contextlib.suppress(OSError):
        while chunk := os.read(read_fd, 1 << 16):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            kept = [line + b"\n" for line in lines if not NOISE.match(line)]
            dropped[0] += len(lines) - len(kept)
            if kept:
                os.write(out_fd, b"".join(kept))
        if pending and not NOISE.match(pending):
            os.write(out_fd, pending)
    os.close(read_fd)
    os.close(out_fd)


@contextlib.contextmanager
def quiet_native_logs(enabled: bool = True) -> Iterator[IO[str] | None]:
    """Filter file descriptor 2 (see the module docstring) while the block runs; processes started
    inside inherit the filter. Yields a text stream on the real stderr for output that must not be
    line-buffered by the filter (a progress bar redrawn with '\\r'), or None when not filtering."""
    if not enabled:
        yield None
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable descriptor 2: nothing to filter
        yield None
        return
    read_fd, write_fd = os.pipe()
    dropped = [0]
    pump = threading.Thread(target=_pump, args=(read_fd, os.dup(saved), dropped), name="stderr-filter", daemon=True)
    pump.start()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    direct = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="replace")
    try:
        yield direct
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        direct.close()
        os.dup2(saved, 2)  # the filter's pipe now ends once the workers that inherited it are gone
        os.close(saved)
        pump.join(timeout=5)
        if dropped[0]:
            log.debug("left out %d MediaPipe/TFLite info and warning lines", dropped[0])
