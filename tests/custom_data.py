"""A user's own recordings, made for tests: clips drawn by the project's renderer, written as real
video files with OpenCV (.mp4, .avi, .webm; one kept as a frame folder), a CSV of their glosses in
the `custom` layout and, for some or all, precomputed keypoints taken from the renderer's joints."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import cv2
import numpy as np

from signkd.data.manifest import SPLITS
from signkd.data.synthetic import render_corpus
from signkd.features.keypoints import LEFT_HAND, NUM_JOINTS, POSE, POSE_NAMES, RIGHT_HAND
from signkd.io import load_npz, save_npz

# (suffix, fourcc) per video, cycling; None: left as a folder of PNG frames
KINDS = ((".mp4", "mp4v"), (".avi", "MJPG"), None, (".webm", "VP80"))
HEADER = ("video", "glosses", "split", "translation", "signer")
HEIGHT, WIDTH = 260, 210


def render_clips(out: Path, *, num_train: int, num_dev: int, num_test: int, max_signs: int = 2, seed: int = 5) -> dict:
    """Render a tiny corpus (in this process); per video: its frame folder, glosses, ground truth."""
    corpus = render_corpus(out, seed=seed, num_train=num_train, num_dev=num_dev, num_test=num_test, num_signers=2,
                           min_signs=1, max_signs=max_signs, height=HEIGHT, width=WIDTH, progress=False, workers=1)
    videos = []
    for split in SPLITS:
        with open(out / "PHOENIX-2014-T/annotations/manual" / f"PHOENIX-2014-T.{split}.corpus.csv", encoding="utf-8") as f:
            for row in csv.DictReader(f, delimiter="|"):
                frames = out / "PHOENIX-2014-T/features/fullFrame-210x260px" / split / row["name"]
                videos.append({"name": row["name"], "split": split, "frames": frames, "glosses": row["orth"],
                               "translation": row["translation"], "signer": row["speaker"],
                               "truth": out / "ground_truth" / f"{row['name']}.npz",
                               "n": len(list(frames.glob("*.png")))})
    return {"videos": videos, "pose_names": corpus["ground_truth"]["pose_names"]}


def encode(frames_dir: Path, dest: Path, fourcc: str) -> None:
    images = [cv2.imread(str(p)) for p in sorted(frames_dir.glob("*.png"))]
    height, width = images[0].shape[:2]
    writer = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*fourcc), 25, (width, height))
    assert writer.isOpened(), f"this OpenCV cannot write {dest.suffix} ({fourcc})"
    for image in images:
        writer.write(image)
    writer.release()


def truth_keypoints(truth: Path, pose_names: list[str]) -> dict[str, np.ndarray]:
    """The renderer's joints in the documented layout, as a user's own keypoint tool would write them."""
    gt = load_npz(truth)
    t = len(gt["hand_joints"])
    landmarks, mask = np.zeros((t, NUM_JOINTS, 3), np.float32), np.zeros((t, NUM_JOINTS), bool)
    for j, name in enumerate(POSE_NAMES, start=POSE.start):
        k = pose_names.index(name)
        landmarks[:, j, :2] = gt["pose_joints"][:, k] / (WIDTH, HEIGHT)
        mask[:, j] = gt["pose_visible"][:, k]
    for hand, part in enumerate((LEFT_HAND, RIGHT_HAND)):
        landmarks[:, part, :2] = gt["hand_joints"][:, hand] / (WIDTH, HEIGHT)
        mask[:, part] = gt["hand_visible"][:, hand][:, None]
    return {"landmarks": landmarks, "mask": mask, "frame_size": np.array([HEIGHT, WIDTH], np.int32)}


def make_custom(root: Path, rendered: dict, *, per_split: bool = False, keypoints_every: int = 2) -> dict[str, dict]:
    """A user's folder: videos/ (+ frames/), annotations.csv (or {split}.csv), and keypoints/<id>.npz
    for every `keypoints_every`-th video (0: none). Returns per id what was written."""
    rows, by_id = [], {}
    for i, v in enumerate(rendered["videos"]):
        kind = KINDS[i % len(KINDS)]
        if kind is None:
            rel = Path("frames") / v["name"]
            shutil.copytree(v["frames"], root / rel)
        else:
            rel = Path("videos") / f"{v['name']}{kind[0]}"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            encode(v["frames"], root / rel, kind[1])
        precomputed = bool(keypoints_every) and i % keypoints_every == 0
        if precomputed:
            save_npz(root / "keypoints" / f"{v['name']}.npz", **truth_keypoints(v["truth"], rendered["pose_names"]))
        rows.append({"video": str(rel), "glosses": v["glosses"], "split": v["split"],
                     "translation": v["translation"], "signer": v["signer"]})
        by_id[v["name"]] = {**v, "path": root / rel, "precomputed": precomputed}
    if per_split:
        for split in SPLITS:
            write_csv(root / f"{split}.csv", [r for r in rows if r["split"] == split], drop=("split",))
    else:
        write_csv(root / "annotations.csv", rows)
    return by_id


def write_csv(path: Path, rows: list[dict], drop: tuple[str, ...] = ()) -> None:
    cols = [c for c in HEADER if c not in drop]
    lines = ["|".join(cols)] + ["|".join(r[c] for c in cols) for r in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
