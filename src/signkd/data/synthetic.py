"""Renders the embedded synthetic corpus in the RWTH-Phoenix-2014T on-disk layout.

Writing the real dataset's layout (annotation CSVs with `|` separators, one PNG folder per
video) means the Phoenix-2014T reader - the code path real data takes - runs on every default
`dvc repro`. The renderer's ground truth (joints, gloss boundaries, and what makes a hand hard to
detect: the face's box, the hand's contrast) is kept beside it:

    out_root/
      PHOENIX-2014-T/annotations/manual/PHOENIX-2014-T.{train,dev,test}.corpus.csv
      PHOENIX-2014-T/features/fullFrame-210x260px/{split}/{name}/images0001.png ...
      ground_truth/{name}.npz
      corpus.json

Every random choice is drawn from generators seeded by (seed, purpose, split, index), so the
same seed gives byte-identical PNGs, CSVs and corpus.json, independent of rendering order and
worker count (the .npz files hold identical arrays; their zip headers carry write times).
"""

from __future__ import annotations

import csv
import io
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from signkd.data.grammar import Sentence, sample_sentence
from signkd.data.render import (
    HANDS,
    NUM_HAND_JOINTS,
    POSE_MEDIAPIPE_INDEX,
    POSE_NAMES,
    RenderParams,
    Signer,
    make_signer,
    plan_motion,
    render_video,
)
from signkd.data.signs import lexicon_description, minimal_pairs, vocabulary
from signkd.io import atomic_dir, save_npz, write_json

SPLITS = ("train", "dev", "test")
CORPUS_DIR = "PHOENIX-2014-T"
FRAMES_DIR = "fullFrame-210x260px"  # the real dataset's folder name, kept whatever the frame size
CSV_COLUMNS = ("name", "video", "start", "end", "speaker", "orth", "translation")
FPS = 25
# Huffman-only deflate: on these noisy frames it is both faster and smaller than the default
PNG_OPTIONS = [cv2.IMWRITE_PNG_COMPRESSION, 3, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY]
_SEED_SIGNER, _SEED_SENTENCE, _SEED_VIDEO = 0, 1, 2  # purposes, so streams never overlap
# multi_signer: every signer in every split (Phoenix-2014 multi-signer); signer_independent: one
# signer is held out of train and signs all of dev and test (Phoenix-2014 SI5)
SPLIT_MODES = ("multi_signer", "signer_independent")


def annotation_path(root: Path, split: str) -> Path:
    return Path(root) / CORPUS_DIR / "annotations" / "manual" / f"PHOENIX-2014-T.{split}.corpus.csv"


def frames_path(root: Path, split: str, name: str) -> Path:
    return Path(root) / CORPUS_DIR / "features" / FRAMES_DIR / split / name


def ground_truth_path(root: Path, name: str) -> Path:
    return Path(root) / "ground_truth" / f"{name}.npz"


def video_name(split: str, index: int) -> str:
    return f"synth_{split}_{index:05d}"


def check_render_args(seed, sizes: dict[str, int], num_signers, min_signs, max_signs, height, width) -> None:
    def is_int(v) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    for name, value in {"seed": seed, **sizes, "num_signers": num_signers, "min_signs": min_signs,
                        "max_signs": max_signs, "height": height, "width": width}.items():
        if not is_int(value):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    for name, value in sizes.items():
        if value < 1:
            raise ValueError(f"{name} must be positive, got {value}")
    if num_signers < 1:
        raise ValueError(f"num_signers must be positive, got {num_signers}")
    if min_signs < 1:
        raise ValueError(f"min_signs must be positive, got {min_signs}")
    if min_signs > max_signs:
        raise ValueError(f"min_signs ({min_signs}) must not exceed max_signs ({max_signs})")


def _held_out_index(split_mode, test_signer, num_signers: int) -> int | None:
    """0-based index of the signer kept out of train, or None; `test_signer` counts from 1 like
    the signer ids (4 means Signer04)."""
    if split_mode not in SPLIT_MODES:
        raise ValueError(f"split_mode must be one of {', '.join(SPLIT_MODES)}, got {split_mode!r}")
    if split_mode == "multi_signer":
        if test_signer is not None:
            raise ValueError("test_signer is only used with split_mode 'signer_independent'; leave it empty (null) "
                             "for 'multi_signer'")
        return None
    if num_signers < 2:
        raise ValueError(f"split_mode 'signer_independent' needs num_signers >= 2 (one held out of train, at least "
                         f"one to train on), got {num_signers}")
    if test_signer is None:
        return num_signers - 1
    is_int = isinstance(test_signer, (int, np.integer)) and not isinstance(test_signer, bool)
    if not is_int or not 1 <= test_signer <= num_signers:
        raise ValueError(f"test_signer must be a signer number from 1 to num_signers ({num_signers}), "
                         f"got {test_signer!r}")
    return int(test_signer) - 1


def split_signers(split_mode: str, test_signer: int | None, num_signers: int) -> dict[str, list[int]]:
    """The 0-based indices of the signers each split draws from (round-robin within the split)."""
    held = _held_out_index(split_mode, test_signer, num_signers)
    everyone = list(range(num_signers))
    if held is None:
        return {split: everyone for split in SPLITS}
    return {"train": [i for i in everyone if i != held], "dev": [held], "test": [held]}


def split_sentences(seed: int, split: str, count: int, min_signs: int, max_signs: int) -> list[Sentence]:
    """The first `count` sentences of `split`, in order: the draw `render_corpus` makes (a split's
    sentences depend only on the seed and the split, never on the other splits' sizes)."""
    rng = np.random.default_rng([seed, _SEED_SENTENCE, SPLITS.index(split)])
    return [sample_sentence(rng, min_signs, max_signs) for _ in range(count)]


def video_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream that renders video `index` of `split` (motion, camera, noise)."""
    return np.random.default_rng([seed, _SEED_VIDEO, SPLITS.index(split), index])


def make_signers(seed: int, num_signers: int) -> list[Signer]:
    return [make_signer(i, np.random.default_rng([seed, _SEED_SIGNER, i])) for i in range(num_signers)]


def write_annotation_csv(path: Path, rows: list[dict[str, str]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, delimiter="|", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buf.getvalue(), encoding="utf-8")


def _write_frames(folder: Path, frames: list[np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(frames, start=1):
        path = folder / f"images{t:04d}.png"
        if not cv2.imwrite(str(path), frame, PNG_OPTIONS):
            raise OSError(f"could not write frame {path}")


@dataclass(frozen=True)
class RenderJob:
    """Everything needed to render one video, so that any process can do it."""

    root: Path
    split: str
    index: int
    seed: int
    glosses: tuple[str, ...]
    signer: Signer
    params: RenderParams


def _render_job(job: RenderJob) -> int:
    """Render one video and write its frames and ground truth; returns its frame count."""
    rng = video_rng(job.seed, job.split, job.index)
    video = render_video(job.glosses, job.signer, rng, job.params)
    name = video_name(job.split, job.index)
    _write_frames(frames_path(job.root, job.split, name), video.frames)
    save_npz(
        ground_truth_path(job.root, name),
        hand_joints=video.hand_joints,
        hand_joint_visible=video.hand_joint_visible,
        hand_visible=video.hand_visible,
        pose_joints=video.pose_joints,
        pose_visible=video.pose_visible,
        gloss_spans=video.gloss_spans.astype(np.int32),
        face_box=video.face_box,
        hand_contrast=video.hand_contrast,
    )
    return len(video.frames)


def split_jobs(root: Path, seed: int, split: str, indices, sentences: list[Sentence], pool: list[Signer],
                params: RenderParams) -> tuple[list[RenderJob], list[dict[str, str]]]:
    """Render jobs and annotation rows of videos `indices` of `split`; `sentences` are the split's
    sentences from index 0 (signers go round-robin over `pool` by index, so video i is the same
    whichever call renders it)."""
    jobs, rows = [], []
    for i in indices:
        sentence, signer, name = sentences[i], pool[i % len(pool)], video_name(split, i)
        jobs.append(RenderJob(root, split, i, seed, sentence.glosses, signer, params))
        rows.append({"name": name, "video": f"{name}/1/*.png", "start": "-1", "end": "-1", "speaker": signer.id,
                     "orth": " ".join(sentence.glosses), "translation": sentence.translation})
    return jobs, rows


def planned_frames(job: RenderJob) -> int:
    """The frame count `_render_job` will produce, from the motion plan alone (milliseconds, where
    rendering takes a second): what the progress bar counts, so its ETA is in frames."""
    return len(plan_motion(list(job.glosses), job.signer, video_rng(job.seed, job.split, job.index)).states)


def _run_jobs(jobs: list[RenderJob], workers: int, bar: tqdm) -> list[int]:
    """Frame counts of all jobs, in job order. Each video has its own seed, so running them in
    parallel changes nothing in the output."""
    if workers <= 1 or len(jobs) <= 1:
        counts = []
        for job in jobs:
            counts.append(_render_job(job))
            bar.update(counts[-1])
        return counts
    # spawn, not fork: the parent may hold threads (torch, mediapipe) that fork would copy broken
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_single_threaded_opencv) as pool:
        futures = {pool.submit(_render_job, job): k for k, job in enumerate(jobs)}
        counts = [0] * len(jobs)
        for future in as_completed(futures):
            counts[futures[future]] = future.result()
            bar.update(counts[futures[future]])
        return counts


def render_jobs(jobs: list[RenderJob], workers: int, progress: bool) -> list[int]:
    """Frame counts of all jobs; the bar counts frames (videos differ up to 3x in length)."""
    total = sum(planned_frames(job) for job in jobs) if progress else 0
    with tqdm(total=total, desc="render", unit="frame", unit_scale=True, disable=not progress) as bar:
        return _run_jobs(jobs, workers, bar)


def _single_threaded_opencv() -> None:
    """Worker processes already use every core; OpenCV's own threads would only contend."""
    cv2.setNumThreads(1)


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def ground_truth_description() -> dict:
    """What the arrays in ground_truth/{name}.npz mean (written into corpus.json)."""
    return {
        "hand_joints": "float32 [T, 2, 21, 2] pixel (x, y); hand 0 = signer's left, 1 = signer's right",
        "hand_joint_visible": "bool [T, 2, 21] joint inside the frame and not covered by an occluder",
        "hand_visible": f"bool [T, 2] at least {NUM_HAND_JOINTS - 2} of the hand's joints visible",
        "pose_joints": "float32 [T, P, 2] pixel (x, y), in the order of pose_names",
        "pose_visible": "bool [T, P] point inside the frame",
        "gloss_spans": "int32 [N, 2] first frame (inclusive) and end frame (exclusive) of each sign, 0-based",
        "face_box": "float32 [T, 4] pixel x0, y0, x1, y1 of the face (a hand overlapping it is harder to detect)",
        "hand_contrast": "float32 [T, 2] |skin luma - mean luma of the scene behind the hand's box| / 255",
        "hands": list(HANDS),
        "hand_joint_order": "MediaPipe hand landmarks: 0 wrist, 1-4 thumb, 5-8 index, 9-12 middle, "
        "13-16 ring, 17-20 pinky",
        "pose_names": list(POSE_NAMES),
        "pose_mediapipe_index": list(POSE_MEDIAPIPE_INDEX),
        "sides": "left/right are the signer's anatomical sides, as MediaPipe Holistic names them on an "
        "unmirrored image: the signer's right hand appears on the image's left",
    }


def render_corpus(
    out_root: Path,
    *,
    seed: int,
    num_train: int,
    num_dev: int,
    num_test: int,
    num_signers: int,
    min_signs: int,
    max_signs: int,
    height: int,
    width: int,
    progress: bool = True,
    workers: int | None = None,
    split_mode: str = "multi_signer",
    test_signer: int | None = None,
) -> dict:
    """Render the whole corpus into out_root (replacing it atomically) and return its description.

    Signers are assigned round-robin within each split. With `split_mode="multi_signer"` every
    signer appears in every split (given at least `num_signers` videos per split); with
    `"signer_independent"` signer number `test_signer` (default: the last) signs all of dev and
    test and none of train, so a model is scored on a signer it never saw. Sentences and the
    per-video random streams do not depend on the mode, only who signs.

    The returned dict is what corpus.json holds, plus `elapsed_s` (kept out of the file so that
    the file is reproducible). Videos are rendered by `workers` processes (default: one per CPU
    core, at most 8); the output does not depend on it. Workers are spawned, so a calling script
    needs the usual `if __name__ == "__main__":` guard.
    """
    sizes = {"num_train": num_train, "num_dev": num_dev, "num_test": num_test}
    check_render_args(seed, sizes, num_signers, min_signs, max_signs, height, width)
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise ValueError(f"workers must be a positive integer or None, got {workers!r}")
    pools = split_signers(split_mode, test_signer, num_signers)
    test_signer = None if test_signer is None else int(test_signer)  # numpy ints are not JSON
    params = RenderParams(height=height, width=width)
    signers = make_signers(seed, num_signers)
    counts = dict(zip(SPLITS, (num_train, num_dev, num_test)))
    started = time.perf_counter()
    jobs: list[RenderJob] = []
    rows: dict[str, list[dict[str, str]]] = {}
    with atomic_dir(out_root) as tmp:
        for split in SPLITS:
            sentences = split_sentences(seed, split, counts[split], min_signs, max_signs)
            new_jobs, rows[split] = split_jobs(tmp, seed, split, range(counts[split]), sentences,
                                               [signers[i] for i in pools[split]], params)
            jobs += new_jobs
        workers = default_workers() if workers is None else workers
        frame_counts = render_jobs(jobs, workers, progress)
        split_stats: dict[str, dict] = {}
        for split in SPLITS:
            write_annotation_csv(annotation_path(tmp, split), rows[split])
            split_stats[split] = {
                "videos": counts[split],
                "frames": sum(n for job, n in zip(jobs, frame_counts) if job.split == split),
                "signers": sorted({r["speaker"] for r in rows[split]}),
            }
        description = {
            "dataset": "synthetic",
            "layout": CORPUS_DIR,
            "seed": seed,
            "params": {**sizes, "num_signers": num_signers, "min_signs": min_signs, "max_signs": max_signs,
                       "height": height, "width": width, "fps": FPS, "render": asdict(params),
                       "split_mode": split_mode, "test_signer": test_signer},
            "split_mode": split_mode,
            "held_out_signer": signers[pools["test"][0]].id if split_mode == "signer_independent" else None,
            "vocabulary": vocabulary(),
            "lexicon": lexicon_description(),
            "minimal_pairs": {kind: [list(p) for p in pairs] for kind, pairs in minimal_pairs().items()},
            "signers": [signer.to_dict() for signer in signers],
            "splits": split_stats,
            "ground_truth": ground_truth_description(),
        }
        write_json(tmp / "corpus.json", description)
    elapsed = time.perf_counter() - started
    n_frames = sum(st["frames"] for st in split_stats.values())
    n_videos = sum(counts.values())
    print(f"synthetic corpus: {n_videos} videos, {n_frames} frames rendered in {elapsed:.1f}s -> {out_root}")
    return {**description, "elapsed_s": elapsed}
