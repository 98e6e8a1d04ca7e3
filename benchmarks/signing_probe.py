"""Is somebody signing? The `recognize` rule measured on signing and on still videos.

Usage:
    python benchmarks/signing_probe.py [--videos 40] [--json reports/signing_probe/metrics.json]

Renders the first N test videos of the default corpus exactly as `prepare` does (seed and corpus
settings from params.yaml), and from each two still clips of the same length: its middle frame
held (a signer frozen mid-sign, hands raised and visible) and its first frame held (a person
standing at rest). MediaPipe runs on all of them through `recognize`'s own extractor; the rule is
`recognize`'s (hands in at least MIN_HAND_FRAMES of the frames, and hand travel at least
MIN_HAND_MOTION shoulder widths). Printed and written: the false-alarm rate on the signing videos
(must be 0), the catch rate on the still clips, and the motion of each kind (min / median / max),
which is what the threshold was set between.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import yaml

from signkd.data.synthetic import frames_path, render_corpus, video_name
from signkd.features.keypoints import keypoints_for_video
from signkd.features.workers import quiet_native_logs
from signkd.io import write_json
from signkd.recognize import MIN_HAND_FRAMES, MIN_HAND_MOTION, _hand_share, hand_motion, is_signing

ROOT = Path(__file__).resolve().parents[1]


def still_clip(frames: list[Path], index: int, dest: Path) -> Path:
    dest.mkdir(parents=True)
    image = cv2.imread(str(frames[index]))
    for t in range(len(frames)):
        cv2.imwrite(str(dest / f"{t:04d}.png"), image)
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=40, help="test videos of the default corpus (and 2x still clips)")
    ap.add_argument("--json", type=Path, default=ROOT / "reports" / "signing_probe" / "metrics.json")
    args = ap.parse_args(argv)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    syn = params["data"]["synthetic"]
    kinds: dict[str, list[tuple[float, float, bool]]] = {"signing": [], "still_mid": [], "still_rest": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        render_corpus(root / "corpus", seed=params["seed"], num_train=1, num_dev=1, num_test=args.videos,
                      num_signers=syn["num_signers"], min_signs=syn["min_signs"], max_signs=syn["max_signs"],
                      height=syn["height"], width=syn["width"], split_mode=syn["split_mode"],
                      test_signer=syn["test_signer"], progress=False)
        with quiet_native_logs():
            for k in range(args.videos):
                folder = frames_path(root / "corpus", "test", video_name("test", k))
                frames = sorted(folder.glob("*.png"))
                clips = {"signing": folder,
                         "still_mid": still_clip(frames, len(frames) // 2, root / f"mid{k}"),
                         "still_rest": still_clip(frames, 0, root / f"rest{k}")}
                for kind, clip in clips.items():
                    arrays = keypoints_for_video(clip)
                    kinds[kind].append((_hand_share(arrays), hand_motion(arrays), is_signing(arrays)))
    metrics: dict[str, float] = {"videos": args.videos, "min_hand_frames": MIN_HAND_FRAMES,
                                 "min_hand_motion": MIN_HAND_MOTION}
    for kind, rows in kinds.items():
        motion = np.array([r[1] for r in rows])
        said_signing = np.array([r[2] for r in rows])
        metrics |= {f"{kind}_motion_min": round(float(motion.min()), 4),
                    f"{kind}_motion_median": round(float(np.median(motion)), 4),
                    f"{kind}_motion_max": round(float(motion.max()), 4),
                    f"{kind}_hand_share_median": round(float(np.median([r[0] for r in rows])), 3)}
        if kind == "signing":
            metrics["false_alarm_rate"] = round(float(1 - said_signing.mean()), 4)
        else:
            metrics[f"{kind}_catch_rate"] = round(float(1 - said_signing.mean()), 4)
    for key, value in metrics.items():
        print(f"{key:>26}: {value}")
    write_json(args.json, metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
