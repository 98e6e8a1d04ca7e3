"""Extraction workers end with their stage, and MediaPipe's native log lines stay out of the terminal.

Each test runs a "stage" as its own Python process (the extraction library under real worker
processes), because both behaviours are about processes and file descriptors.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]

# Picklable extractor functions for spawned workers live in a module the workers can import.
EXTRACTORS = """\
import os, time
import numpy as np

def slow(source):
    time.sleep(120)
    return {"x": np.zeros(1)}

def noisy(source):
    os.write(2, b"W0000 00:00:1796311656.299942    9768 inference_feedback_manager.cc:114] Feedback manager noise\\n")
    os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
    os.write(2, b"E0000 00:00:1796311656.299942    9768 calculator_graph.cc:887] a real error from " + source.name.encode() + b"\\n")
    return {"x": np.zeros(1)}

def summary(arrays):
    return {}
"""

STAGE = """\
import sys
from signkd.data.manifest import Sample
from signkd.features.parallel import run_per_video
import extractors
if __name__ == "__main__":
    root, kind, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    samples = [Sample(id=f"v{i}", split="train", frames_dir=f"{root}/v{i}", signer="s", num_frames=1, glosses=("A",))
               for i in range(4)]
    run_per_video(samples, f"{root}/out{workers}", getattr(extractors, kind), extractors.summary, workers=workers,
                  progress=False)
    print("finished", file=sys.stderr)
"""


def _stage(tmp_path: Path, kind: str, workers: int) -> subprocess.Popen:
    for i in range(4):
        (tmp_path / f"v{i}").mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / f"v{i}" / "0.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "extractors.py").write_text(EXTRACTORS)
    (tmp_path / "stage.py").write_text(STAGE)
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "stage.py", str(tmp_path), kind, str(workers)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_workers_and_resource_tracker_die_with_a_killed_stage(tmp_path):
    stage = _stage(tmp_path, "slow", workers=2)
    parent = psutil.Process(stage.pid)
    deadline = time.time() + 120
    while len([c for c in parent.children() if "spawn_main" in " ".join(c.cmdline())]) < 2:
        assert stage.poll() is None and time.time() < deadline, stage.communicate()
        time.sleep(0.2)
    time.sleep(1.0)  # the workers have run their initializer and picked up tasks
    children = [c.pid for c in parent.children(recursive=True)]
    assert len(children) >= 2

    os.kill(stage.pid, signal.SIGKILL)
    stage.wait(timeout=30)
    deadline = time.time() + 15
    while any(_alive(pid) for pid in children) and time.time() < deadline:
        time.sleep(0.2)
    left = [psutil.Process(pid).cmdline() for pid in children if _alive(pid)]
    for pid in children:  # never leave them behind, whatever the outcome
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"processes left running after the stage was killed: {left}"


def test_native_info_lines_are_filtered_and_errors_still_show(tmp_path):
    for workers in (2, 1):
        stage = _stage(tmp_path, "noisy", workers=workers)
        _, err = stage.communicate(timeout=240)
        assert stage.returncode == 0, err
        assert "Feedback manager noise" not in err and "XNNPACK" not in err
        assert all(f"a real error from v{i}" in err for i in range(4)) and "finished" in err


def test_mediapipe_extraction_prints_no_native_noise(tmp_path):
    script = textwrap.dedent(f"""
        import numpy as np, cv2
        from pathlib import Path
        from signkd.data.manifest import Sample
        from signkd.features.keypoints import extract_keypoints
        if __name__ == "__main__":
            samples = []
            for i in range(2):
                d = Path(r"{tmp_path}") / f"v{{i}}"
                d.mkdir()
                for t in range(2):
                    cv2.imwrite(str(d / f"{{t}}.png"), np.full((96, 80, 3), 40 * i, np.uint8))
                samples.append(Sample(f"v{{i}}", "train", str(d), "s", 2, ("A",)))
            stats = extract_keypoints(samples, Path(r"{tmp_path}") / "out", workers=2, progress=True)
            print("processed", stats["processed"])
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "processed 2" in out.stdout, out.stderr
    noise = [line for line in out.stderr.splitlines() if "inference_feedback_manager" in line or "XNNPACK" in line
             or "absl::InitializeLog" in line]
    assert not noise, f"{len(noise)} native log lines reached the terminal, e.g. {noise[:2]}"
    assert "keypoints: 100%" in out.stderr  # the progress bar itself still shows


def test_the_filter_drops_tflite_info_lines_that_two_workers_interleaved():
    from signkd.features.workers import _pump

    # TFLite writes "INFO: " and its message separately; two workers at once give these lines
    stream = (b"INFO: INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
              b"Created TensorFlow Lite XNNPACK delegate for CPU.\n"
              b"E0000 00:00:1796598905.559457   11628 graph.cc:12] a real error\n"
              b"Traceback (most recent call last):\n")
    source_r, source_w = os.pipe()
    sink_r, sink_w = os.pipe()
    os.write(source_w, stream)
    os.close(source_w)
    dropped = [0]
    _pump(source_r, sink_w, dropped)  # closes both ends it was given
    with os.fdopen(sink_r, "rb") as sink:
        passed = sink.read()
    assert dropped[0] == 2
    assert passed == b"E0000 00:00:1796598905.559457   11628 graph.cc:12] a real error\nTraceback (most recent call last):\n"
