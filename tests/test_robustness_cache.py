"""Extraction caches are keyed on content and settings, never on modification times.

Re-rendered or checked-out frames with the same bytes (new mtimes, new inodes) must not change one
byte of the extracted features, or DVC sees new data and retrains everything downstream; a
changed extraction setting or extractor version must extract again instead of reusing files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from signkd.data.manifest import Sample, write_manifest
from signkd.features import cache
from signkd.features import flow as fl
from signkd.features import keypoints as kp

BIN = Path(sys.executable).parent


def _video(root: Path, name: str, frames: int = 4, seed: int = 0) -> Sample:
    folder = root / name
    folder.mkdir(parents=True)
    texture = cv2.GaussianBlur((np.random.default_rng(seed).random((120, 120)) * 255).astype(np.uint8), (0, 0), 2)
    for t in range(frames):
        cv2.imwrite(str(folder / f"{t:03d}.png"), cv2.cvtColor(texture[t:t + 64, 2 * t:2 * t + 48], cv2.COLOR_GRAY2BGR))
    return Sample(id=name, split="train", frames_dir=str(folder), signer="s1", num_frames=frames, glosses=("NORD",))


def _touch_and_rewrite(samples: list[Sample]) -> None:
    """What a re-render or `dvc checkout` does: same bytes, new files (new inode, new mtime)."""
    for sample in samples:
        for frame in Path(sample.frames_dir).iterdir():
            data = frame.read_bytes()
            frame.unlink()
            frame.write_bytes(data)
            st = frame.stat()
            os.utime(frame, ns=(st.st_atime_ns, st.st_mtime_ns + 5 * 10**9))


def _state(out: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(out.glob("*.npz"))}


def test_same_frames_with_new_mtimes_change_no_output_byte(tmp_path, monkeypatch):
    samples = [_video(tmp_path / "frames", f"v{i}", seed=i) for i in range(3)]
    flow_out, kp_out = tmp_path / "flow", tmp_path / "keypoints"
    fl.extract_flow(samples, flow_out, height=8, width=6, workers=1, progress=False)
    kp.extract_keypoints(samples[:1], kp_out, workers=1, progress=False)
    before = _state(flow_out), _state(kp_out)

    _touch_and_rewrite(samples)
    flow_stats = fl.extract_flow(samples, flow_out, height=8, width=6, workers=2, progress=False)
    kp_stats = kp.extract_keypoints(samples[:1], kp_out, workers=1, progress=False)
    assert (flow_stats["cached"], flow_stats["processed"], kp_stats["cached"]) == (3, 0, 1)
    assert (_state(flow_out), _state(kp_out)) == before  # not one byte, not even rewritten

    # the side index has learnt the new mtimes: the next run hashes no frame again
    hashed = []
    real = cache.content_fingerprint
    monkeypatch.setattr(cache, "content_fingerprint", lambda source: hashed.append(source) or real(source))
    assert fl.extract_flow(samples, flow_out, height=8, width=6, workers=1, progress=False)["cached"] == 3
    assert hashed == []


@pytest.mark.parametrize("change", ["flow_version", "farneback_param", "keypoint_version", "mediapipe_version"])
def test_changed_extractor_settings_extract_again(tmp_path, monkeypatch, change):
    samples = [_video(tmp_path / "frames", "v", seed=2)]
    out = tmp_path / "out"
    if change.startswith("flow") or change.startswith("farneback"):
        def run():
            return fl.extract_flow(samples, out, method="farneback", height=8, width=6, workers=1, progress=False)
    else:
        def run():
            return kp.extract_keypoints(samples, out, workers=1, progress=False)
    assert run()["processed"] == 1 and run()["cached"] == 1
    if change == "flow_version":
        monkeypatch.setattr(fl, "EXTRACTOR_VERSION", fl.EXTRACTOR_VERSION + 1)
    elif change == "farneback_param":
        monkeypatch.setitem(fl._FARNEBACK, "winsize", 9)
    elif change == "keypoint_version":
        monkeypatch.setattr(kp, "EXTRACTOR_VERSION", kp.EXTRACTOR_VERSION + 1)
    else:
        real = kp.extractor_settings
        monkeypatch.setattr(kp, "extractor_settings", lambda *a, **kw: real(*a, **kw) | {"mediapipe": "0.0.1"})
    assert run()["processed"] == 1


EXTRACT = """\
import yaml
from signkd.data.manifest import read_manifest
from signkd.features.flow import extract_flow
p = yaml.safe_load(open("params.yaml"))
extract_flow(read_manifest("manifest", "train"), "data/flow", height=8, width=6, workers=p["workers"], progress=False)
"""
TRAIN = """\
import hashlib, pathlib
digest = hashlib.sha1(b"".join(p.read_bytes() for p in sorted(pathlib.Path("data/flow").glob("*.npz"))))
pathlib.Path("model.txt").write_text(digest.hexdigest() + "\\n")
"""


def _dvc(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVC_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    out = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"{args}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def test_dvc_status_stays_clean_after_touching_every_frame_and_rerunning_extraction(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    samples = [_video(repo / "frames", f"v{i}", seed=i) for i in range(3)]
    samples = [Sample(**{**s.__dict__, "frames_dir": str(Path(s.frames_dir).relative_to(repo))}) for s in samples]
    write_manifest(repo / "manifest", "train", samples)
    (repo / "params.yaml").write_text("workers: 1\n")
    (repo / "extract.py").write_text(EXTRACT)
    (repo / "train.py").write_text(TRAIN)
    (repo / ".gitignore").write_text("/data/\n.*.sources.json\n")
    stages = {
        "extract": {"cmd": "python extract.py", "deps": ["extract.py", "frames", "manifest"], "params": ["workers"],
                    "outs": [{"data/flow": {"persist": True}}]},
        "train": {"cmd": "python train.py", "deps": ["train.py", "data/flow"], "outs": ["model.txt"]},
    }
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "t@e.x"], ["git", "config", "user.name", "t"],
                ["dvc", "init", "-q"], ["dvc", "repro", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "one"]):
        _dvc(repo, *cmd)
    lock = (repo / "dvc.lock").read_text()

    _touch_and_rewrite([Sample(**{**s.__dict__, "frames_dir": str(repo / s.frames_dir)}) for s in samples])
    assert "up to date" in _dvc(repo, "dvc", "status")
    (repo / "params.yaml").write_text("workers: 2\n")  # any reason to rerun extraction: a setting, new code
    log = _dvc(repo, "dvc", "repro")
    assert "Running stage 'extract'" in log and "Running stage 'train'" not in log
    assert "up to date" in _dvc(repo, "dvc", "status")
    data_flow = [e for e in yaml.safe_load(lock)["stages"]["extract"]["outs"]]
    assert data_flow == yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["extract"]["outs"]
