"""Real-time factor of `signkd recognize` on one CPU core, split by step, and what MediaPipe options cost.

Usage:
    python benchmarks/realtime.py [--core 0] [--model models/quantize/student_int8.onnx]
        [--corrector models/correct] [--wer-videos 40] [--json reports/recognize/metrics.json]

Two 10 s, 25 fps videos are made: a *rendered* corpus-style clip (test-split sentences signed back
to back by the corpus renderer, Phoenix's 210 x 260, a PNG frame folder like the corpus) and a
*webcam* clip (640 x 480 .mp4: the signer keyed over a furnished room, lit unevenly, with sensor
noise and the codec's compression). Each is recognised by the real CLI in a fresh process pinned
to one core (`taskset -c CORE`), so interpreter start-up, imports and model loading count, as they
do for a user. Times are CPU seconds of that process (all its threads, on the one core it may
use): the pipeline or other work sharing the core would otherwise inflate wall time; the wall
figures are reported too. `load` is everything outside the timed steps (start-up, imports, model).

MediaPipe is nearly all of the cost, so its options are measured in-process on the same videos:
Holistic on every frame, on every 2nd / 3rd frame (skipped frames filled by the same linear
interpolation that fills detection gaps, so the arrays stay frame-aligned for the other
modalities), and on frames downscaled 2x. With `--wer-videos N` each option's dev WER is measured
on N dev videos with the deployed model (not retrained for the option: the cost is an upper bound).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from signkd.data.render import RenderParams, make_signer, render_video
from signkd.data.synthetic import split_sentences
from signkd.features.frames import iter_frames
from signkd.features.keypoints import PARTS, KeypointExtractor, interpolate_gaps, keypoints_for_video
from signkd.models.spec import ModelSpec
from signkd.quantize import read_config

FPS = 25
SECONDS = 10
STEPS = ("load", "keypoints", "model", "correction")
OPTIONS = {"every_frame": (1, 1.0), "stride2": (2, 1.0), "stride3": (3, 1.0), "half_resolution": (1, 0.5)}
assert all(scale == 1.0 or stride == 1 for stride, scale in OPTIONS.values()), "keypoints_with: stride or scale"


def _sentence_frames(seed: int, params: RenderParams, signer_index: int, key: tuple | None = None) -> list[np.ndarray]:
    """Test-split sentences back to back until SECONDS of video (one continuous signing)."""
    rng = np.random.default_rng([seed, signer_index])
    signer = make_signer(signer_index, rng)
    if key is not None:
        signer = dataclasses.replace(signer, background=key)
    glosses: list[str] = []
    for sentence in split_sentences(seed, "test", 40, 3, 5):
        glosses += list(sentence.glosses)
        if len(glosses) * 9 > SECONDS * FPS * 1.3:  # ~9 frames per sign at these signers' speed
            break
    frames = render_video(tuple(glosses), signer, rng, params).frames
    if len(frames) < SECONDS * FPS:
        raise RuntimeError(f"rendered only {len(frames)} frames; add sentences")
    return frames[: SECONDS * FPS]


def rendered_clip(out: Path, seed: int) -> Path:
    """A corpus-style PNG frame folder (what `prepare` renders, 210 x 260)."""
    out.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(_sentence_frames(seed, RenderParams(), 0), start=1):
        cv2.imwrite(str(out / f"images{i:04d}.png"), frame)
    return out


def _room(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A furnished room behind the signer: wall, window, bookshelf, door, picture, lamp light."""
    wall = np.array([150, 170, 190], np.float32) * np.linspace(1.1, 0.75, width)[None, :, None]
    room = np.repeat(wall, height, axis=0) * np.linspace(1.05, 0.85, height)[:, None, None]
    room = room.astype(np.uint8)
    cv2.rectangle(room, (int(0.04 * width), int(0.1 * height)), (int(0.3 * width), int(0.55 * height)), (235, 225, 210), -1)
    cv2.line(room, (int(0.17 * width), int(0.1 * height)), (int(0.17 * width), int(0.55 * height)), (90, 90, 90), 4)
    shelf_x = int(0.72 * width)
    cv2.rectangle(room, (shelf_x, int(0.15 * height)), (width - 10, height), (40, 70, 100), -1)
    for row in range(4):
        y0 = int((0.2 + 0.2 * row) * height)
        x = shelf_x + 6
        while x < width - 16:
            w, h = int(rng.integers(6, 16)), int(rng.integers(40, 70))
            colour = tuple(int(c) for c in rng.integers(30, 220, 3))
            cv2.rectangle(room, (x, y0 + 70 - h), (x + w, y0 + 70), colour, -1)
            x += w + 2
        cv2.line(room, (shelf_x, y0 + 72), (width - 10, y0 + 72), (30, 50, 70), 5)
    cv2.rectangle(room, (int(0.33 * width), int(0.05 * height)), (int(0.42 * width), int(0.2 * height)), (60, 110, 160), -1)
    room = cv2.GaussianBlur(room, (0, 0), 2.0)  # the background is out of focus
    light = np.exp(-(((np.arange(width) - 0.2 * width) / (0.6 * width)) ** 2))[None, :, None]
    return np.clip(room * (0.75 + 0.35 * light), 0, 255).astype(np.uint8)


def webcam_clip(path: Path, seed: int) -> Path:
    """A 640 x 480 .mp4: the signer rendered over a chroma key, composited onto a room."""
    key = (0, 210, 0)
    params = RenderParams(height=480, width=640, jpeg_quality=(0, 0), noise_sigma=(0.0, 0.0))
    frames = _sentence_frames(seed, params, 2, key)
    rng = np.random.default_rng(seed)
    room = _room(480, 640, rng).astype(np.float32)
    vignette = (1 - 0.35 * (np.hypot(*np.meshgrid(np.linspace(-1, 1, 640), np.linspace(-1, 1, 480))) / 1.4) ** 2)[..., None]
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(FPS), (640, 480))
    for frame in frames:
        f = frame.astype(np.float32)
        green = f[..., 1] - np.maximum(f[..., 0], f[..., 2])
        alpha = np.clip((green - 60) / 60, 0, 1)[..., None]  # 1 on the key, soft at edges
        f[..., 1] = np.where(alpha[..., 0] > 0, np.minimum(f[..., 1], np.maximum(f[..., 0], f[..., 2]) + 10), f[..., 1])
        f = (alpha * room + (1 - alpha) * f) * vignette + rng.normal(0, 3.0, f.shape)
        writer.write(np.clip(f, 0, 255).astype(np.uint8))
    writer.release()
    return path


def keypoints_with(source: Path, stride: int = 1, scale: float = 1.0, max_gap: int = 4) -> dict[str, np.ndarray]:
    """`keypoints_for_video`'s arrays with Holistic on every `stride`-th frame (what `recognize`
    runs for a student trained with that `student.frame_stride`) or on downscaled frames."""
    if scale == 1.0:
        return keypoints_for_video(source, max_gap=max_gap, frame_stride=stride)
    frames = list(iter_frames(source))
    height, width = frames[0].shape[:2]
    run = [cv2.resize(f, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) for f in frames]
    found, found_mask = KeypointExtractor().extract(run)  # normalised coordinates: scale-free
    filled, interpolated = interpolate_gaps(found, found_mask, max_gap)
    return {"landmarks": filled, "mask": found_mask, "interpolated": interpolated,
            "max_gap": np.asarray(max_gap, np.int32), "frame_size": np.asarray((height, width), np.int32)}


def hand_share(arrays: dict) -> float:
    filled = arrays["mask"] | arrays["interpolated"]
    return float(np.concatenate([filled[:, PARTS["left_hand"]], filled[:, PARTS["right_hand"]]], 1).any(1).mean())


def option_costs(source: Path, seconds: float) -> dict:
    """CPU seconds per video second of each MediaPipe option (in this process, on its one core)."""
    out = {}
    for name, (stride, scale) in OPTIONS.items():
        start = time.process_time()
        arrays = keypoints_with(source, stride, scale)
        out[f"{name}_keypoints_seconds_per_video_second"] = round((time.process_time() - start) / seconds, 4)
        out[f"{name}_hand_frames"] = round(hand_share(arrays), 4)
    return out


def run_cli(video: Path, core: int, model: str, corrector: str | None) -> dict:
    """`signkd recognize --json` in a fresh process pinned to `core`; its JSON plus process CPU/wall."""
    cmd = ["taskset", "-c", str(core), sys.executable, "-m", "signkd.cli", "recognize", str(video), "--json",
           "--model", model, "--threads", "1"]
    cmd += ["--corrector", corrector] if corrector else ["--no-correction"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"recognize failed on {video}: {done.stderr.strip().splitlines()[-1:]}")
    result = json.loads(done.stdout)
    result["process_cpu_seconds"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["process_wall_seconds"] = wall
    return result


def step_split(result: dict, prefix: str = "") -> dict:
    seconds = result["frames"] / result["fps"]
    cpu = dict(result["cpu_seconds"])
    cpu["load"] = result["process_cpu_seconds"] - sum(v for k, v in cpu.items() if k != "load")
    out = {f"{prefix}{step}_seconds_per_video_second": round(cpu.get(step, 0.0) / seconds, 4) for step in STEPS}
    out[f"{prefix}real_time_factor_one_core"] = round(result["process_cpu_seconds"] / seconds, 4)
    out[f"{prefix}real_time_factor_one_core_wall"] = round(result["process_wall_seconds"] / seconds, 4)
    out[f"{prefix}video_seconds"] = round(seconds, 2)
    out[f"{prefix}glosses"] = result["glosses"]
    return out


def _spec(model: str | Path) -> ModelSpec:
    spec = read_config(model)
    if spec is None:
        raise SystemExit(f"{model} carries no SignKD spec: pass a model exported by `dvc repro quantize`")
    return spec


def option_wer(model: str, manifest_dir: Path, videos: int) -> dict:
    """Dev WER of the deployed model on the first `videos` dev videos, per MediaPipe option (not
    retrained for it: an upper bound; the frame-stride study trains for each stride)."""
    import torch

    from signkd.data.manifest import read_manifest
    from signkd.inference import DecodeConfig, OnnxBackend, transcribe
    from signkd.scoring import official_wer
    from signkd.training.data import Item, keypoint_features

    spec = _spec(model)
    prep = spec.preprocessing
    backend, decoding = OnnxBackend(model), DecodeConfig(prep.decode_method, prep.beam_width)
    samples = read_manifest(manifest_dir, "dev")[:videos]
    out = {}
    for name, (stride, scale) in OPTIONS.items():
        items = [Item(s.id, s.glosses, [], {"keypoints": torch.from_numpy(keypoint_features(
            keypoints_with(Path(s.frames_dir), stride, scale, prep.max_gap), prep.keypoint_parts))})
            for s in samples]
        hyps = transcribe(backend, items, spec.vocab, decoding)
        out[f"{name}_dev_wer"] = round(official_wer([list(s.glosses) for s in samples], hyps).wer, 2)
    out["wer_videos"] = len(samples)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--core", type=int, default=0)
    parser.add_argument("--model", default="models/quantize/student_int8.onnx")
    parser.add_argument("--corrector", default="models/correct", help="'' for none")
    parser.add_argument("--manifest-dir", type=Path, default=Path("data/manifest"))
    parser.add_argument("--wer-videos", type=int, default=0, help="dev videos for each option's WER (0: skip)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--strided-models", nargs="*", type=Path, default=[],
                        help="students trained for a frame stride (python -m signkd.studies.frame_stride writes "
                             "models/studies/frame_stride/stride<n>.onnx): recognize's split with each")
    parser.add_argument("--work", type=Path, help="keep the videos here (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="write the figures here (e.g. reports/recognize/metrics.json)")
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {args.core})  # the in-process MediaPipe measurements: the same one core
    corrector = args.corrector if args.corrector and Path(args.corrector).is_dir() else None
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        clips = {"webcam": webcam_clip(work / "webcam.mp4", args.seed), "rendered": rendered_clip(work / "rendered", args.seed)}
        metrics: dict = {"core_pinned": args.core, "correction": int(corrector is not None),
                         "model": str(Path(args.model).resolve()) if Path(args.model).exists() else args.model,
                         "corrector": str(Path(corrector).resolve()) if corrector else ""}
        for name, clip in clips.items():
            prefix = "" if name == "webcam" else "rendered_"
            result = run_cli(clip, args.core, args.model, corrector)
            metrics |= step_split(result, prefix)
            metrics |= {f"{prefix}{k}": v for k, v in option_costs(clip, result["frames"] / result["fps"]).items()}
            for model in args.strided_models:  # the same CLI with a model trained for its stride
                stride = _spec(model).preprocessing.frame_stride
                metrics |= step_split(run_cli(clip, args.core, str(model), corrector), f"{prefix}stride{stride}_trained_")
    if args.wer_videos:
        metrics |= option_wer(args.model, args.manifest_dir, args.wer_videos)
    text = json.dumps(metrics, indent=2, sort_keys=True)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
