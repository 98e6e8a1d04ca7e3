"""Does real MediaPipe Holistic see the synthetic signer? Renders a few videos and measures it.

Prints, over all rendered frames: how often a pose is found; how often each hand is found among
the frames where the renderer says that hand is visible; the mean pixel distance between the
detected hand joints and the renderer's ground truth; and how often a detected hand lies on the
other ground-truth hand (a left/right swap). It runs Holistic exactly as the keypoint stage
does: RGB input, one instance per video, static_image_mode=False, model_complexity=1.

    python benchmarks/detection_probe.py --videos 8 --seed 0
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from signkd.data.grammar import Sentence, sample_sentence
from signkd.data.render import HANDS, RenderParams, make_signer, render_video


def _landmarks_px(landmarks, width: int, height: int) -> np.ndarray | None:
    if landmarks is None:
        return None
    return np.array([(p.x * width, p.y * height) for p in landmarks.landmark], dtype=np.float64)


def probe_video(video, holistic_factory) -> dict[str, np.ndarray]:
    """Per-frame detection outcomes of one rendered video."""
    n = len(video.frames)
    h, w = video.frames[0].shape[:2]
    pose = np.zeros(n, bool)
    found = np.zeros((n, 2), bool)
    err = np.full((n, 2), np.nan)
    swapped = np.zeros((n, 2), bool)
    with holistic_factory() as holistic:
        for t, frame in enumerate(video.frames):
            result = holistic.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            pose[t] = result.pose_landmarks is not None
            for k, lm in enumerate((result.left_hand_landmarks, result.right_hand_landmarks)):
                pts = _landmarks_px(lm, w, h)
                if pts is None:
                    continue
                found[t, k] = True
                own = np.linalg.norm(pts - video.hand_joints[t, k], axis=1).mean()
                other = np.linalg.norm(pts - video.hand_joints[t, 1 - k], axis=1).mean()
                err[t, k] = own
                swapped[t, k] = other < own
    phase = np.full(n, "(rest/transition)", dtype=object)  # the sign each frame shows, if any
    for (start, end), gloss in zip(video.gloss_spans, video.extra["glosses"]):
        phase[start:end] = gloss
    visible = video.hand_visible.copy()
    return {"pose": pose, "found": found, "err": err, "swapped": swapped, "visible": visible, "phase": phase}


def summarise(outcomes: list[dict[str, np.ndarray]]) -> dict[str, float]:
    cat = {k: np.concatenate([o[k] for o in outcomes]) for k in outcomes[0]}
    summary = {"frames": float(len(cat["pose"])), "pose_detected": float(cat["pose"].mean())}
    cat.pop("phase")
    for k, name in enumerate(HANDS):
        vis = cat["visible"][:, k]
        hit = cat["found"][:, k] & vis
        ok = hit & ~cat["swapped"][:, k]
        summary[f"{name}_visible_frames"] = float(vis.sum())
        summary[f"{name}_detected"] = float(hit.sum() / max(vis.sum(), 1))
        summary[f"{name}_swapped"] = float(cat["swapped"][:, k][hit].sum() / max(hit.sum(), 1))
        summary[f"{name}_error_px"] = float(np.nanmean(cat["err"][:, k][ok])) if ok.any() else float("nan")
        summary[f"{name}_false_detections"] = float((cat["found"][:, k] & ~vis).sum())
    both = cat["visible"].all(axis=1)
    summary["both_detected"] = float((cat["found"].all(axis=1) & both).sum() / max(both.sum(), 1))
    return summary


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--signers", type=int, default=4)
    parser.add_argument("--min-signs", type=int, default=2)
    parser.add_argument("--max-signs", type=int, default=4)
    parser.add_argument("--height", type=int, default=260)
    parser.add_argument("--width", type=int, default=210)
    parser.add_argument("--glosses", default="", help="render this comma-separated sentence in every video")
    parser.add_argument("--per-gloss", action="store_true", help="also break detection down by sign")
    parser.add_argument("--supersample", type=int, default=RenderParams.supersample)
    parser.add_argument("--save", type=Path, default=None, help="write a contact sheet of each video here")
    args = parser.parse_args(argv)

    import mediapipe as mp  # imported late: it is slow to load and only this probe needs it

    def factory():
        return mp.solutions.holistic.Holistic(static_image_mode=False, model_complexity=1)

    rng = np.random.default_rng(args.seed)
    signers = [make_signer(i, np.random.default_rng([args.seed, i])) for i in range(args.signers)]
    params = RenderParams(height=args.height, width=args.width, supersample=args.supersample)
    outcomes = []
    t_render = t_detect = 0.0
    for v in range(args.videos):
        sentence = sample_sentence(rng, args.min_signs, args.max_signs)
        if args.glosses:
            sentence = Sentence(tuple(args.glosses.split(",")), "")
        signer = signers[v % len(signers)]
        t0 = time.perf_counter()
        video = render_video(sentence.glosses, signer, np.random.default_rng([args.seed, 1000 + v]), params)
        t1 = time.perf_counter()
        outcome = probe_video(video, factory)
        t_detect += time.perf_counter() - t1
        t_render += t1 - t0
        outcomes.append(outcome)
        s = summarise([outcome])
        print(
            f"video {v} {signer.id} {'L' if signer.left_handed else 'R'}-handed {' '.join(sentence.glosses)}: "
            f"T={len(video.frames)} pose={s['pose_detected']:.2f} left={s['left_detected']:.2f} "
            f"right={s['right_detected']:.2f} err=({s['left_error_px']:.1f}, {s['right_error_px']:.1f})px"
        )
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            _contact_sheet(video, outcome, args.save / f"video{v:02d}.png")
    summary = summarise(outcomes)
    if args.per_gloss:
        _per_gloss(outcomes)
    n_frames = summary["frames"]
    print(f"\nrendered {int(n_frames)} frames in {t_render:.1f}s ({1000 * t_render / n_frames:.1f} ms/frame); "
          f"Holistic {1000 * t_detect / n_frames:.1f} ms/frame")
    for key, value in summary.items():
        print(f"{key:>24s}: {value:.3f}")
    return summary


def _per_gloss(outcomes: list[dict[str, np.ndarray]]) -> None:
    """Detection rate of each hand per sign, to find the signs MediaPipe struggles with."""
    phase = np.concatenate([o["phase"] for o in outcomes])
    found = np.concatenate([o["found"] for o in outcomes])
    visible = np.concatenate([o["visible"] for o in outcomes])
    for name in sorted(set(phase)):
        m = phase == name
        rates = [f"{(found[m, k] & visible[m, k]).sum() / max(visible[m, k].sum(), 1):.2f}" for k in range(2)]
        print(f"{name:>12s} frames={m.sum():4d} left={rates[0]} right={rates[1]}")


def _contact_sheet(video, outcome, path: Path, columns: int = 8) -> None:
    """Frames with ground-truth joints (green) and a mark of which hands MediaPipe found."""
    tiles = []
    for t, frame in enumerate(video.frames):
        img = frame.copy()
        for k in range(2):
            colour = (0, 255, 0) if outcome["found"][t, k] else (0, 0, 255)
            if video.hand_visible[t, k]:
                for x, y in video.hand_joints[t, k]:
                    cv2.circle(img, (int(x), int(y)), 1, colour, -1)
        tiles.append(img)
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    cv2.imwrite(str(path), np.vstack(rows))


if __name__ == "__main__":
    main()
