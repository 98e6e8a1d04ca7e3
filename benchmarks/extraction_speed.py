"""Frames/s of keypoint and flow extraction with 1 and N workers, and where the time goes.

Usage:
    python benchmarks/extraction_speed.py                       # renders a small synthetic corpus
    python benchmarks/extraction_speed.py --manifest-dir data/manifest --split dev --videos 8

End-to-end figures come from `extract_keypoints` / `extract_flow` (so they include worker start-up,
which matters on small inputs); the breakdown times decoding, the extractor itself and saving
separately, inline, on the same videos (each decoded into memory first, fine at benchmark size).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from signkd.data.manifest import Sample, read_manifest
from signkd.features.flow import FLOW_METHODS, compute_flow, extract_flow
from signkd.features.frames import iter_frames
from signkd.features.keypoints import KeypointExtractor, extract_keypoints
from signkd.io import save_npz


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest-dir", type=Path, help="read videos from this manifest instead of rendering")
    parser.add_argument("--split", default="train")
    parser.add_argument("--videos", type=int, default=4, help="number of videos to time")
    parser.add_argument("--workers", type=int, default=2, help="the N in '1 vs N workers'")
    parser.add_argument("--flow-method", default="dis", choices=FLOW_METHODS)
    parser.add_argument("--flow-size", type=int, nargs=2, default=(32, 26), metavar=("HEIGHT", "WIDTH"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser.parse_args(argv)


def _rendered_samples(root: Path, count: int, seed: int) -> list[Sample]:
    try:
        from signkd.data.phoenix import read_phoenix2014t
        from signkd.data.synthetic import render_corpus
    except ImportError as exc:
        sys.exit(f"cannot render a corpus ({exc}); pass --manifest-dir of a prepared dataset instead")
    render_corpus(root, seed=seed, num_train=count, num_dev=1, num_test=1, num_signers=2,
                  min_signs=2, max_signs=3, height=260, width=210, progress=False)
    return read_phoenix2014t(root)["train"][:count]


def _breakdown(samples: list[Sample], work, save, out_dir: Path) -> dict:
    """Seconds spent decoding, in `work(frames)` and in `save(path, result)`, summed over videos."""
    decode = compute = compute_cpu = saving = 0.0
    frame_count = 0
    for sample in samples:
        start = time.perf_counter()
        frames = list(iter_frames(sample.frames_dir))
        decode += time.perf_counter() - start
        frame_count += len(frames)
        start, cpu_start = time.perf_counter(), time.process_time()
        result = work(frames)
        compute += time.perf_counter() - start
        compute_cpu += time.process_time() - cpu_start
        start = time.perf_counter()
        save(out_dir / f"{sample.id}.npz", result)
        saving += time.perf_counter() - start
    total = decode + compute + saving
    return {"decode_s": round(decode, 3), "compute_s": round(compute, 3), "save_s": round(saving, 3),
            "decode_share": round(decode / total, 3), "compute_share": round(compute / total, 3),
            "save_share": round(saving / total, 3),
            # CPU time is steadier than wall time on a shared machine
            "extractor_cpu_ms_per_frame": round(1000 * compute_cpu / frame_count, 2)}


def _run(samples: list[Sample], args: argparse.Namespace, scratch: Path) -> dict:
    height, width = args.flow_size
    figures: dict = {"videos": len(samples), "frames": None, "workers_n": args.workers}
    for workers in sorted({1, args.workers}):
        kp = extract_keypoints(samples, scratch / f"kp{workers}", workers=workers, progress=False)
        fl = extract_flow(samples, scratch / f"flow{workers}", method=args.flow_method, height=height,
                          width=width, workers=workers, progress=False)
        figures["frames"] = kp["frames"]
        figures[f"keypoints_fps_{workers}w"] = kp["frames_per_second"]
        figures[f"flow_fps_{workers}w"] = fl["frames_per_second"]
        figures["detection_rate"] = kp["detection_rate"]

    extractor = KeypointExtractor()
    figures["keypoints_breakdown"] = _breakdown(
        samples, extractor.extract, lambda path, r: save_npz(path, landmarks=r[0], mask=r[1]), scratch)
    figures["flow_breakdown"] = _breakdown(
        samples, lambda frames: compute_flow(frames, args.flow_method, height=height, width=width),
        lambda path, r: save_npz(path, flow=r[0], scale=r[1]), scratch)
    return figures


def _print(figures: dict, method: str) -> None:
    n = figures["workers_n"]
    print(f"{figures['videos']} videos, {figures['frames']} frames; detection rates {figures['detection_rate']}")
    for name, label in (("keypoints", "keypoints (MediaPipe Holistic)"), ("flow", f"flow ({method})")):
        line = f"{label:32s} 1 worker: {figures[f'{name}_fps_1w']:8.1f} frames/s"
        if n != 1:
            line += f"   {n} workers: {figures[f'{name}_fps_{n}w']:8.1f} frames/s"
        print(line)
        b = figures[f"{name}_breakdown"]
        print(f"{'':32s} time share: decode {b['decode_share']:.0%}, extractor {b['compute_share']:.0%}, "
              f"save {b['save_share']:.0%}; extractor CPU {b['extractor_cpu_ms_per_frame']:.1f} ms/frame")


def main(argv: list[str] | None = None) -> dict:
    args = _parse(argv)
    with tempfile.TemporaryDirectory(prefix="signkd-bench-") as tmp:
        scratch = Path(tmp)
        if args.manifest_dir is not None:
            samples = read_manifest(args.manifest_dir, args.split)[: args.videos]
        else:
            samples = _rendered_samples(scratch / "raw", args.videos, args.seed)
        if not samples:
            sys.exit("no videos to time")
        figures = _run(samples, args, scratch)
    _print(figures, args.flow_method)
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    main()
