"""Where MediaPipe Holistic extraction spends its time on the default corpus, and what would cut it.

Usage (after `dvc repro prepare`, on a quiet machine; ~10 min on 2 cores):
    python benchmarks/extraction_profile.py                 # 40 test videos of data/manifest
    python benchmarks/extraction_profile.py --videos 20 --json reports/extraction/metrics.json

1. One Holistic call, taken apart, in one process: graph start-up per video, PNG decoding, colour
   conversion, the graph itself, copying the results into arrays, graph shut-down; plus the sha1
   of the frames the cache takes. Milliseconds per frame and shares.
2. End to end, `extract_keypoints` (the stage's code: workers, cache, saving) with 1, 2 and 3 workers.
3. Two ideas that would change the stored landmarks, checked against the renderer's ground truth
   before anyone adopts them: (a) reusing the landmarks of frames that barely differ from the
   previous one (how many frames would qualify), (b) running Holistic at half the corpus's native
   size (time per frame, detection rates and PCK, with a paired bootstrap over videos of the
   change, so "within noise" is a measured statement).

Writes reports/extraction/metrics.json (flat keys) and prints a summary.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from signkd.data.manifest import Sample, read_manifest
from signkd.data.synthetic import ground_truth_path
from signkd.features.accuracy import accuracy_of, keypoint_accuracy, pck_key
from signkd.features.frames import iter_frames, list_image_files
from signkd.features.keypoints import (
    _frame_landmarks,
    _import_mediapipe,
    extract_keypoints,
    with_gaps_filled,
)
from signkd.io import load_npz, save_npz, write_json

STILL_DIFF = 1.0  # grey levels: mean absolute change below which a frame counts as "still"
RESAMPLES = 2000


def _holistic():
    mp = _import_mediapipe()
    return mp.solutions.holistic.Holistic(static_image_mode=False, model_complexity=1, smooth_landmarks=True,
                                          refine_face_landmarks=False, min_detection_confidence=0.5,
                                          min_tracking_confidence=0.5)


def breakdown(samples: list[Sample]) -> dict:
    """Milliseconds per frame of each step of one Holistic call, in one process."""
    steps = dict.fromkeys(("graph_start", "sha1", "decode", "colour", "graph", "copy", "graph_close"), 0.0)
    frames = 0
    for sample in samples:
        files = list_image_files(sample.frames_dir)
        t = time.perf_counter()
        digest = hashlib.sha1()
        for path in files:
            digest.update(path.read_bytes())
        steps["sha1"] += time.perf_counter() - t
        t = time.perf_counter()
        holistic = _holistic()
        steps["graph_start"] += time.perf_counter() - t
        for path in files:
            t0 = time.perf_counter()
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            t1 = time.perf_counter()
            rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            t2 = time.perf_counter()
            result = holistic.process(rgb)
            t3 = time.perf_counter()
            _frame_landmarks(result)
            t4 = time.perf_counter()
            steps["decode"] += t1 - t0
            steps["colour"] += t2 - t1
            steps["graph"] += t3 - t2
            steps["copy"] += t4 - t3
            frames += 1
        t = time.perf_counter()
        holistic.close()
        steps["graph_close"] += time.perf_counter() - t
    total = sum(steps.values())
    out = {"breakdown_frames": frames, "breakdown_frames_per_second_one_process": round(frames / total, 2)}
    for name, seconds in steps.items():
        out[f"ms_per_frame_{name}"] = round(1000 * seconds / frames, 3)
        out[f"share_{name}"] = round(seconds / total, 4)
    return out


def end_to_end(samples: list[Sample], scratch: Path, workers: tuple[int, ...]) -> dict:
    """frames/s of the stage's own code (fresh output folder: nothing cached)."""
    out = {}
    for n in workers:
        start = time.perf_counter()
        stats = extract_keypoints(samples, scratch / f"kp{n}", workers=n, progress=False)
        out[f"stage_frames_per_second_{n}_workers"] = round(stats["frames"] / (time.perf_counter() - start), 2)
    return out


def still_frames(samples: list[Sample]) -> dict:
    """How many frames barely differ from the previous one (candidates for reusing landmarks)."""
    changes = []
    for sample in samples:
        previous = None
        for frame in iter_frames(sample.frames_dir):
            grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
            if previous is not None:
                changes.append(float(np.abs(grey - previous).mean()))
            previous = grey
    changes_arr = np.array(changes)
    return {"still_threshold_grey_levels": STILL_DIFF, "still_frame_share": round(float((changes_arr < STILL_DIFF).mean()), 4),
            "frame_change_grey_levels_p5": round(float(np.percentile(changes_arr, 5)), 3),
            "frame_change_grey_levels_median": round(float(np.median(changes_arr)), 3)}


def _extract_scaled(source: str, scale: float) -> tuple[dict, int, float]:
    """Holistic on frames resized by `scale`; arrays as the stage stores them (native frame_size)."""
    holistic, points, masks, size, graph = _holistic(), [], [], None, 0.0
    try:
        for frame in iter_frames(source):
            size = frame.shape[:2]
            if scale != 1.0:
                frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            rgb = np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            t = time.perf_counter()
            result = holistic.process(rgb)
            graph += time.perf_counter() - t
            p, m = _frame_landmarks(result)
            points.append(p)
            masks.append(m)
    finally:
        holistic.close()
    arrays = with_gaps_filled({"landmarks": np.stack(points), "mask": np.stack(masks),
                                "frame_size": np.asarray(size, np.int32)}, 4)
    return arrays, len(points), graph


def _per_video_metric(samples, out_dir: Path, gt_dir: Path, key: str) -> np.ndarray:
    values = []
    for s in samples:
        stats = accuracy_of([(s.id, load_npz(out_dir / f"{s.id}.npz"), load_npz(ground_truth_path(gt_dir.parent, s.id)))])
        values.append(stats.get(key, np.nan))
    return np.array(values, np.float64)


def half_resolution(samples: list[Sample], scratch: Path, gt_dir: Path) -> dict:
    """Native vs half size: graph time per frame, detection and PCK, paired bootstrap of the change."""
    out: dict = {}
    dirs = {}
    for label, scale in (("native", 1.0), ("half", 0.5)):
        folder = dirs[label] = scratch / f"scaled_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        frames = graph = 0.0
        for s in samples:
            arrays, n, seconds = _extract_scaled(s.frames_dir, scale)
            save_npz(folder / f"{s.id}.npz", **arrays)
            frames += n
            graph += seconds
        acc = keypoint_accuracy(samples, folder, gt_dir)
        out[f"{label}_graph_ms_per_frame"] = round(1000 * graph / frames, 3)
        for key in ("detection_rate_gt_left_hand", "detection_rate_gt_right_hand", "detection_rate_gt_pose",
                    "detection_rate_gt_face", pck_key("hand", 0.2), pck_key("arm", 0.2)):
            if key in acc:
                out[f"{label}_{key}"] = acc[key]
    rng = np.random.default_rng(0)
    for key in ("detection_rate_gt_left_hand", "detection_rate_gt_right_hand", pck_key("hand", 0.2)):
        diff = _per_video_metric(samples, dirs["half"], gt_dir, key) - _per_video_metric(samples, dirs["native"], gt_dir, key)
        diff = diff[np.isfinite(diff)]
        boots = diff[rng.integers(0, len(diff), (RESAMPLES, len(diff)))].mean(1)
        out[f"half_minus_native_{key}_mean"] = round(float(diff.mean()), 4)
        out[f"half_minus_native_{key}_ci_low"] = round(float(np.percentile(boots, 2.5)), 4)
        out[f"half_minus_native_{key}_ci_high"] = round(float(np.percentile(boots, 97.5)), 4)
    out["half_graph_speedup"] = round(out["native_graph_ms_per_frame"] / out["half_graph_ms_per_frame"], 3)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest-dir", type=Path, default=Path("data/manifest"))
    parser.add_argument("--raw-root", type=Path, default=Path("data/raw/synthetic"), help="holds ground_truth/")
    parser.add_argument("--split", default="test")
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--json", type=Path, default=Path("reports/extraction/metrics.json"))
    args = parser.parse_args(argv)
    try:
        samples = read_manifest(args.manifest_dir, args.split)[: args.videos]
    except Exception as exc:  # noqa: BLE001 - one line instead of a traceback
        sys.exit(f"cannot read {args.manifest_dir} ({exc}); run `dvc repro prepare` first")
    cv2.setNumThreads(1)  # as in the stage's workers
    figures: dict = {"videos": len(samples), "frames": sum(s.num_frames for s in samples)}
    figures |= breakdown(samples)
    with tempfile.TemporaryDirectory(prefix="signkd-profile-") as tmp:
        figures |= end_to_end(samples, Path(tmp), (1, 2, 3))
        figures |= still_frames(samples)
        figures |= half_resolution(samples, Path(tmp), args.raw_root / "ground_truth")
    write_json(args.json, figures)
    print(json.dumps(figures, indent=2, sort_keys=True))
    return figures


if __name__ == "__main__":
    main()
