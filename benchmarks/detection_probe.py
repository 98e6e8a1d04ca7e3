"""How often does real MediaPipe Holistic find the synthetic signer's hands, and why does it miss?

Renders the first N videos of one split of the default corpus exactly as the prepare stage does
(same seed, signers, sentences and per-video random streams, read from params.yaml), runs the
pipeline's own extractor on them (signkd.features.keypoints: Holistic, model_complexity=1, one
instance per video) and scores it with the pipeline's own accuracy code against the renderer's
ground truth. Prints, per hand, the detection rate where the renderer says the hand is visible
(real Phoenix-2014T, same MediaPipe: left 69%, right 71%, both 52%), the share of misses with each
condition (fast motion, overlap with the face or the other hand, low contrast), the detection
rate under each condition and on clear hands, hand PCK@0.2 on detected hands, and MediaPipe's
frames per second. Pin it to one core for comparable speed:

    taskset -c 1 python benchmarks/detection_probe.py --videos 12
    taskset -c 1 python benchmarks/detection_probe.py --videos 12 --save /tmp/sheets  # contact sheets
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

from signkd.data import synthetic
from signkd.data.render import RenderParams, render_video
from signkd.features.accuracy import CONDITIONS, accuracy_of
from signkd.features.flow import compute_flow, dequantize_flow
from signkd.features.keypoints import DEFAULT_MAX_GAP, LEFT_HAND, RIGHT_HAND, KeypointExtractor, interpolate_gaps

GT_KEYS = ("hand_joints", "hand_joint_visible", "hand_visible", "pose_joints", "pose_visible", "face_box",
           "hand_contrast")


def corpus_videos(seed: int, syn: dict, split: str, count: int):
    """(name, glosses, signer, rng) of the first `count` videos of `split`, as render_corpus draws them."""
    pools = synthetic.split_signers(syn.get("split_mode", "multi_signer"), syn.get("test_signer"),
                                    syn["num_signers"])
    signers = synthetic.make_signers(seed, syn["num_signers"])
    sentences = synthetic.split_sentences(seed, split, count, syn["min_signs"], syn["max_signs"])
    for i, sentence in enumerate(sentences):
        signer = signers[pools[split][i % len(pools[split])]]
        yield synthetic.video_name(split, i), sentence.glosses, signer, synthetic.video_rng(seed, split, i)


def flow_follows_hands(frames: list[np.ndarray], gt: dict) -> np.ndarray:
    """[T-1, 2, 2]: per frame and hand, (ground-truth joint displacement, DIS optical flow magnitude
    averaged over the hand's box), both in pixels; flow at full resolution, as the flow stage computes it."""
    h, w = frames[0].shape[:2]
    flow, scale = compute_flow(frames, "dis", height=h, width=w)
    flow = np.linalg.norm(dequantize_flow(flow, scale), axis=1)  # [T, H, W]
    joints = gt["hand_joints"]
    out = np.zeros((len(frames) - 1, 2, 2))
    for t in range(1, len(frames)):
        for k in range(2):
            x0, y0 = np.maximum(np.floor(joints[t, k].min(axis=0)).astype(int), 0)
            x1, y1 = np.ceil(joints[t, k].max(axis=0)).astype(int) + 1
            box = flow[t, y0:y1, x0:x1]
            moved = np.linalg.norm(joints[t, k] - joints[t - 1, k], axis=-1).mean()
            out[t - 1, k] = moved, box.mean() if box.size else 0.0
    return out


def _contact_sheet(video, mask: np.ndarray, path: Path, columns: int = 8) -> None:
    """Frames with the ground-truth hand joints: green where MediaPipe found that hand, red where not."""
    tiles = []
    for t, frame in enumerate(video.frames):
        img = frame.copy()
        for k in range(2):
            if video.hand_visible[t, k]:
                colour = (0, 255, 0) if mask[t, k] else (0, 0, 255)
                for x, y in video.hand_joints[t, k]:
                    cv2.circle(img, (int(round(x)), int(round(y))), 1, colour, -1)
        tiles.append(img)
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    cv2.imwrite(str(path), np.vstack([np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--split", default="test", choices=synthetic.SPLITS)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--seed", type=int, default=None, help="default: params.yaml's seed")
    parser.add_argument("--save", type=Path, default=None, help="write a contact sheet of each video here")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)

    raw = yaml.safe_load(args.params.read_text(encoding="utf-8"))
    syn = raw["data"]["synthetic"]
    seed = raw["seed"] if args.seed is None else args.seed
    params = RenderParams(height=syn["height"], width=syn["width"])
    extractor = KeypointExtractor()
    triples, frames, t_render, t_detect, cpu_detect = [], 0, 0.0, 0.0, 0.0
    motion, visible, missed = [], [], []  # flow vs. true hand motion; hand visible; hand visible but missed
    for name, glosses, signer, rng in corpus_videos(seed, syn, args.split, args.videos):
        t0 = time.perf_counter()
        video = render_video(glosses, signer, rng, params)
        t1, c1 = time.perf_counter(), time.process_time()
        landmarks, mask = extractor.extract(video.frames)
        t_detect += time.perf_counter() - t1
        cpu_detect += time.process_time() - c1
        t_render += t1 - t0
        frames += len(video.frames)
        landmarks, interpolated = interpolate_gaps(landmarks, mask, DEFAULT_MAX_GAP)
        kp = {"landmarks": landmarks, "mask": mask, "interpolated": interpolated,
              "frame_size": np.array(video.frames[0].shape[:2], np.int32)}
        gt = {k: getattr(video, k) for k in GT_KEYS if hasattr(video, k)}
        triples.append((name, kp, gt))
        motion.append(flow_follows_hands(video.frames, gt))
        hands = np.stack([mask[:, LEFT_HAND.start], mask[:, RIGHT_HAND.start]], axis=1)
        missed.append((video.hand_visible & ~hands)[1:])
        visible.append(video.hand_visible[1:])
        one = accuracy_of([(name, kp, gt)])
        print(f"{name} {signer.id} speed={getattr(signer, 'speed', 1):.2f} T={len(video.frames)} "
              f"left={one.get('detection_rate_gt_left_hand', float('nan')):.2f} "
              f"right={one.get('detection_rate_gt_right_hand', float('nan')):.2f}  {' '.join(glosses)}")
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            _contact_sheet(video, hands, args.save / f"{name}.png")

    stats = accuracy_of(triples)
    stats.pop("pck_curve", None)
    stats |= {"frames": frames, "frames_per_video": round(frames / max(len(triples), 1), 1),
              "mediapipe_fps": round(frames / t_detect, 1),
              "mediapipe_cpu_ms_per_frame": round(1000 * cpu_detect / frames, 1),
              "render_ms_per_frame": round(1000 * t_render / frames, 1)}
    print(f"\n{len(triples)} {args.split} videos, {frames} frames ({stats['frames_per_video']}/video); "
          f"render {stats['render_ms_per_frame']} ms/frame; MediaPipe {stats['mediapipe_fps']} frames/s "
          f"({stats['mediapipe_cpu_ms_per_frame']} CPU ms/frame)")
    print("detection where visible: left {detection_rate_gt_left_hand:.3f}  right {detection_rate_gt_right_hand:.3f}"
          "  both {detection_rate_gt_both_hands:.3f}  (real Phoenix-2014T: 0.69 / 0.71 / 0.52)".format(**stats))
    print(f"hand PCK@0.2 on detected hands: {stats.get('pck02_hand', float('nan')):.3f}   "
          f"PCK@0.1: {stats.get('pck01_hand', float('nan')):.3f}")
    print(f"{'condition':>14s} {'detected when present':>22s} {'share of misses':>16s}")
    for cond in (*CONDITIONS, "clear", "unexplained"):
        rate, share = (stats.get(f"{prefix}_{cond}") for prefix in ("detection_rate_gt_hand", "miss_share"))
        rate, share = ("-" if v is None else f"{v:.3f}" for v in (rate, share))
        print(f"{cond:>14s} {rate:>22s} {share:>16s}")
    motion, visible, missed = np.concatenate(motion), np.concatenate(visible), np.concatenate(missed)
    for label, sel in (("all hands", visible), ("hands MediaPipe missed", missed)):
        moved, seen = motion[sel][:, 0], motion[sel][:, 1]
        if len(moved) > 2:
            key = "flow_corr_" + ("missed" if label != "all hands" else "all")
            stats[key] = round(float(np.corrcoef(moved, seen)[0, 1]), 3)
            print(f"optical flow in the hand's box vs. its true motion, {label}: correlation {stats[key]:.2f} "
                  f"over {len(moved)} hand-frames (median motion {np.median(moved):.1f} px/frame)")
    if args.json:
        args.json.write_text(json.dumps(stats, indent=2, sort_keys=True), encoding="utf-8")
    return stats


if __name__ == "__main__":
    main()
