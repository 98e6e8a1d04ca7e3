"""Host memory and speed of Phoenix-profile training as the corpus grows: N utterances, then 4N.

Usage:
    python benchmarks/memory_scale.py [--steps 4] [--workers 2] [--gb 8] [--json reports/scale/metrics.json]

It writes a Phoenix-shaped corpus to disk (210x260 PNG frames, keypoints, optical flow at the
profile's size; 24-40 frames an utterance), with N chosen so that the decoded 224x224 frames of the
N utterances exceed `--gb` GB, and 4N utterances in all. The frames are links to a pool of a few
distinct PNG images: this measures memory and speed, not WER, and every link is still decoded and
resized per read. Then, for each corpus size and for the profile's teacher (ResNet-18 video + flow
CNN + keypoint MLP, hidden 1,024, 1,296 glosses) and video student, a fresh process builds the
split through the real `load_items`, reads it through the real DataLoader (`loader.workers`
workers, length bucketing, no frame cache) and runs `--steps` training steps (forward, CTC,
backward, Adam) on the CPU, over the same first utterances at both sizes. Meanwhile this process
samples the resident memory of the child and of all its DataLoader workers every 100 ms; the figure
is the peak of their sum by PSS (a page shared by a forked worker and its parent counts once; the
plain RSS sum, which counts it in each, is reported beside it). On the CPU the figure includes the
models' activations, which a GPU run keeps in GPU memory.

Targets (issue "Phoenix-ready"): peak RSS <= 4 GB at both sizes and < 10% growth from N to 4N;
a loader that held a split in memory would need the decoded frames themselves (>8 GB at N).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import psutil

from signkd.io import write_json

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "params" / "phoenix2014.yaml"
FRAME_HW = (260, 210)  # Phoenix fullFrame-210x260px (height, width)
DECODED_BYTES = 224 * 224 * 3  # one frame as the ResNet-18 stream reads it (uint8)
MIN_FRAMES, MAX_FRAMES = 24, 40
GLOSSES = 1296
POOL = 16  # distinct frame images the corpus links to


def corpus_lengths(gigabytes: float, seed: int = 0) -> list[int]:
    """Utterance lengths until their decoded frames exceed `gigabytes` GB."""
    rng = np.random.default_rng(seed)
    lengths: list[int] = []
    while sum(lengths) * DECODED_BYTES <= gigabytes * 1e9:
        lengths.append(int(rng.integers(MIN_FRAMES, MAX_FRAMES + 1)))
    return lengths


def write_corpus(root: Path, count: int, lengths: list[int], params, write: bool = True) -> list:
    """`count` utterances on disk (lengths cycle through `lengths`); returns their Samples
    (`write=False`: only the Samples of a corpus written before)."""
    from signkd.data.manifest import Sample
    from signkd.features.keypoints import PARTS

    rng = np.random.default_rng(1)
    pool = root / "pool"
    pool.mkdir(parents=True, exist_ok=True)
    for i in range(POOL if write else 0):
        image = rng.integers(0, 256, size=(*FRAME_HW, 3), dtype=np.uint8)
        cv2.imwrite(str(pool / f"{i}.png"), cv2.GaussianBlur(image, (9, 9), 3))
    joints = max(p.stop for p in PARTS.values())
    flow_hw = (params.flow.height, params.flow.width)
    samples = []
    for k in range(count):
        t = lengths[k % len(lengths)]
        uid = f"utt{k:05d}"
        frames = root / "frames" / uid
        samples.append(Sample(uid, "train", str(frames), "Signer01", t,
                              tuple(f"G{(k * 7 + j * 13) % GLOSSES:04d}" for j in range(3 + k % 3))))
        if not write:
            continue
        frames.mkdir(parents=True, exist_ok=True)
        for f in range(t):
            link = frames / f"images{f + 1:04d}.png"
            if not link.exists():
                link.symlink_to(pool / f"{(k + f) % POOL}.png")
        shared = root / "shared" / f"{t}"
        if not shared.exists():  # keypoints and flow of one length, shared by its utterances
            shared.mkdir(parents=True)
            np.savez(shared / "kp.npz", landmarks=rng.uniform(0.2, 0.8, (t, joints, 3)).astype(np.float32),
                     mask=np.ones((t, joints), bool), frame_size=np.array(FRAME_HW, np.int32),
                     interpolated=np.zeros((t, joints), bool), max_gap=np.int32(4))
            np.savez(shared / "flow.npz", flow=rng.integers(-20, 20, (t, 2, *flow_hw), dtype=np.int8),
                     scale=np.float32(0.5))
        for kind, directory in (("kp", "keypoints"), ("flow", "flow")):
            link = root / directory / f"{uid}.npz"
            link.parent.mkdir(exist_ok=True)
            if not link.exists():
                link.symlink_to(shared / f"{kind}.npz")
    return samples


def profile_params():
    from signkd.profiles import check

    return check(PROFILE, ROOT / "params.yaml")


def train_steps(root: Path, count: int, model_kind: str, steps: int, workers: int) -> dict:
    """In a fresh process: the split through the real loader, `steps` training steps of one model."""
    import torch

    from signkd.experiment import keypoint_dim, loader_config, student_config, teacher_config
    from signkd.models.checkpoint import build_model
    from signkd.training.augment import AugmentConfig
    from signkd.training.data import FeatureSource, Vocabulary, load_items
    from signkd.training.loader import batches
    from signkd.training.trainer import ctc_loss

    torch.manual_seed(0)
    params = profile_params()
    lengths = json.loads((root / "lengths.json").read_text())
    samples = write_corpus(root, count, lengths, params, write=False)
    vocab = Vocabulary([f"G{i:04d}" for i in range(GLOSSES)])
    source = FeatureSource(root / "keypoints", root / "flow", params.model.frame_height, params.model.frame_width,
                           tuple(params.model.keypoint_parts), 1, None)
    if model_kind == "teacher":
        config, modalities = teacher_config(params, keypoint_dim(params), vocab), tuple(params.teacher.modalities)
        section = params.teacher
    else:
        config = student_config(params, keypoint_dim(params), vocab).with_architecture(modality="video")
        modalities, section = ("video",), params.student
    items = load_items(samples, vocab, source, modalities, train=True, desc=f"{model_kind} items")
    model = build_model(config).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=section.lr)
    loader = loader_config(params)
    loader = type(loader)(workers=workers, bucket=loader.bucket, prefetch=loader.prefetch)
    baseline_mb = psutil.Process().memory_info().rss / 2**20  # model, optimizer, libraries, the split's items
    # in file order (no shuffle): the timed batches are the same utterances at N and at 4N
    data = batches(items, section.batch_size, shuffle=False,
                   augment=AugmentConfig(**params.augment.model_dump()), rng=np.random.default_rng(0), loader=loader)
    frames, start, done = 0, None, 0
    for batch in data:
        out = model(batch)
        loss, _ = ctc_loss(out, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        done += 1
        if done == 1:  # the first step pays for worker start-up and allocator warm-up
            start = time.perf_counter()
        else:
            frames += int(batch["lengths"].sum())
        if done > steps:
            break
    return {"frames": frames, "seconds": time.perf_counter() - start, "utterances": len(items),
            "before_data_rss_mb": round(baseline_mb, 1),
            # weights + gradients + Adam's two moments, float32: the model's own share of the peak
            "model_state_mb": round(16 * sum(p.numel() for p in model.parameters()) / 2**20, 1)}


def peak_rss_of(cmd: list[str]) -> tuple[float, float, float, dict]:
    """Run `cmd`; the peak resident memory (MB) of it and its children together -- by PSS, so that
    the pages a forked DataLoader worker shares with its parent count once -- the peak of their
    plain RSS sum (pages counted once per process), the peak PSS of the DataLoader workers alone (what
    the data path costs beside the model), and the JSON it printed last."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    parent = psutil.Process(proc.pid)
    peak = peak_plain = peak_workers = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_plain, peak_workers
        while not stop.is_set():
            try:
                tree = [parent, *parent.children(recursive=True)]
                infos = [p.memory_full_info() for p in tree]
                peak = max(peak, sum(i.pss for i in infos))
                peak_plain = max(peak_plain, sum(i.rss for i in infos))
                peak_workers = max(peak_workers, sum(i.pss for i in infos[1:]))
            except psutil.Error:
                pass
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"benchmark step failed: {' '.join(cmd)}")
    return peak / 2**20, peak_plain / 2**20, peak_workers / 2**20, json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=8.0, help="decoded 224x224 frames of the N-utterance corpus exceed this")
    ap.add_argument("--steps", type=int, default=4, help="timed training steps per model and size (after one warm-up)")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers (the profile has 8, for a GPU server)")
    ap.add_argument("--dir", type=Path, default=None, help="where to write the corpus (default: a temporary folder)")
    ap.add_argument("--json", type=Path, default=ROOT / "reports" / "scale" / "metrics.json")
    ap.add_argument("--run", nargs=3, metavar=("ROOT", "COUNT", "MODEL"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.run:
        os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count()))
        root, count, kind = Path(args.run[0]), int(args.run[1]), args.run[2]
        print(json.dumps(train_steps(root, count, kind, args.steps, args.workers)))
        return 0

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        lengths = corpus_lengths(args.gb)
        n = len(lengths)
        (root / "lengths.json").write_text(json.dumps(lengths))
        t0 = time.perf_counter()
        write_corpus(root, 4 * n, lengths, profile_params())
        print(f"corpus: N = {n} utterances ({sum(lengths)} frames, {sum(lengths) * DECODED_BYTES / 1e9:.1f} GB decoded "
              f"at 224x224), 4N = {4 * n}; written in {time.perf_counter() - t0:.0f} s", flush=True)
        figures: dict[str, dict[str, dict]] = {}
        for count, label in ((n, "n"), (4 * n, "4n")):
            for kind in ("teacher", "video_student"):
                cmd = [sys.executable, __file__, "--steps", str(args.steps), "--workers", str(args.workers),
                       "--run", str(root), str(count), kind]
                peak, plain, workers, run = peak_rss_of(cmd)
                figures.setdefault(label, {})[kind] = {"peak_rss_mb": round(peak, 1), "plain": round(plain, 1),
                                                       "workers": round(workers, 1), **run}
                print(f"{label:>2} ({count} utterances) {kind:>13}: peak RSS {peak:7.0f} MB (plain sum {plain:.0f}; "
                      f"{run['before_data_rss_mb']:.0f} before any batch; workers {workers:.0f}), "
                      f"{run['frames'] / run['seconds']:.1f} frames/s", flush=True)
    peak_n = max(f["peak_rss_mb"] for f in figures["n"].values())
    peak_4n = max(f["peak_rss_mb"] for f in figures["4n"].values())
    frames = sum(f["frames"] for size in figures.values() for f in size.values())
    seconds = sum(f["seconds"] for size in figures.values() for f in size.values())
    metrics = {
        "utterances_n": n,
        "peak_rss_mb_n": peak_n,
        "peak_rss_mb_4n": peak_4n,
        "rss_growth_n_to_4n": round(peak_4n / peak_n - 1, 4),
        "frames_per_second": round(frames / seconds, 2),
        "decoded_gb_n": round(sum(lengths) * DECODED_BYTES / 1e9, 2),
        "workers": args.workers,
        "steps": args.steps,
        **{f"{k}_peak_rss_mb_{label}": v["peak_rss_mb"] for label, size in figures.items() for k, v in size.items()},
        **{f"{k}_peak_rss_plain_sum_mb_{label}": v["plain"] for label, size in figures.items() for k, v in size.items()},
        **{f"{k}_model_state_mb": v["model_state_mb"] for k, v in figures["n"].items()},
        **{f"{k}_workers_pss_mb_{label}": v["workers"] for label, size in figures.items() for k, v in size.items()},
        **{f"{k}_before_data_rss_mb_{label}": v["before_data_rss_mb"] for label, size in figures.items()
           for k, v in size.items()},
        **{f"{k}_frames_per_second_{label}": round(v["frames"] / v["seconds"], 2)
           for label, size in figures.items() for k, v in size.items()},
    }
    write_json(args.json, metrics)  # atomic
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
