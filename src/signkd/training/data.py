"""Turn manifests + extracted features into padded tensor batches for CTC training.

Everything a split needs is loaded into memory once per stage (the default corpus is a few
thousand frames); video frames are resized on load to the size the video stream expects.
"""

from __future__ import annotations

from signkd.errors import InputError
import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from signkd.data.manifest import Sample
from signkd.features.frames import iter_frames
from signkd.features.keypoints import thinned
from signkd.io import load_npz
from signkd.model_input import ALL_PARTS, DOWNSAMPLE, keypoint_features, num_frames, pad_inputs  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

FLOW_UNIT = 2.0  # pixels; flow fields are divided by this so typical values are O(1)


class UnknownGlossError(InputError, ValueError):
    """A training sentence uses a gloss outside the vocabulary built by `prepare`."""


class Vocabulary:
    """Gloss <-> class id. Class 0 is the CTC blank; unknown glosses have no id."""

    def __init__(self, glosses: list[str]):
        if len(set(glosses)) != len(glosses):
            raise ValueError("vocabulary has duplicate glosses")
        self.glosses = list(glosses)
        self.index = {g: i + 1 for i, g in enumerate(self.glosses)}

    @property
    def num_classes(self) -> int:
        return len(self.glosses) + 1

    def encode(self, glosses: tuple[str, ...] | list[str], sample_id: str = "?") -> list[int]:
        unknown = [g for g in glosses if g not in self.index]
        if unknown:
            raise UnknownGlossError(
                f"sample {sample_id}: glosses {unknown} are not in the training vocabulary; "
                "re-run `dvc repro prepare` so vocab.txt is rebuilt from the train split"
            )
        return [self.index[g] for g in glosses]

    def decode(self, ids: list[int]) -> list[str]:
        return [self.glosses[i - 1] for i in ids if 0 < i <= len(self.glosses)]



def ctc_min_frames(labels: list[int]) -> int:
    """Frames CTC needs after downsampling: one per label plus a blank between repeats."""
    repeats = sum(1 for a, b in zip(labels, labels[1:]) if a == b)
    return len(labels) + repeats


def load_video(frames_dir: str, height: int, width: int) -> np.ndarray:
    frames = [cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA)[:, :, ::-1] for f in iter_frames(frames_dir)]
    return np.ascontiguousarray(np.stack(frames).transpose(0, 3, 1, 2))  # [T, 3, H, W] RGB uint8


@dataclass
class Item:
    id: str
    glosses: tuple[str, ...]
    labels: list[int]
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        """Input frames (every input modality has the same count; teacher outputs are shorter)."""
        return num_frames(self.tensors, self.id)


@dataclass(frozen=True)
class FeatureSource:
    keypoint_dir: Path
    flow_dir: Path
    frame_height: int
    frame_width: int
    keypoint_parts: tuple[str, ...] = ALL_PARTS
    keypoint_stride: int = 1  # a strided student's keypoints: detections of every n-th frame only (see `thinned`)


def load_items(
    samples: list[Sample],
    vocab: Vocabulary,
    source: FeatureSource,
    modalities: tuple[str, ...],
    *,
    train: bool,
    desc: str = "loading",
) -> list[Item]:
    """Load features per sample. Training drops (with a warning) samples CTC cannot align."""
    items: list[Item] = []
    too_short: list[str] = []
    for s in tqdm(samples, desc=desc, unit="video", leave=False):
        labels = vocab.encode(s.glosses, s.id) if train else [vocab.index.get(g, 0) for g in s.glosses]
        tensors: dict[str, torch.Tensor] = {}
        if "keypoints" in modalities:
            kp = _load_feature(source.keypoint_dir / f"{s.id}.npz", s.id, "extract_keypoints")
            kp = thinned(kp, source.keypoint_stride)
            tensors["keypoints"] = torch.from_numpy(keypoint_features(kp, source.keypoint_parts))
        if "flow" in modalities:
            fl = _load_feature(source.flow_dir / f"{s.id}.npz", s.id, "extract_flow")
            flow = fl["flow"].astype(np.float32) * (float(fl["scale"]) / FLOW_UNIT)
            tensors["flow"] = torch.from_numpy(flow)
        if "video" in modalities:
            tensors["video"] = torch.from_numpy(load_video(s.frames_dir, source.frame_height, source.frame_width))
        lengths = {k: v.shape[0] for k, v in tensors.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"sample {s.id}: modalities disagree on frame count {lengths}; re-run extraction")
        item = Item(s.id, s.glosses, labels, tensors)
        if train and item.num_frames // DOWNSAMPLE < ctc_min_frames(labels):
            too_short.append(f"{s.id} ({item.num_frames} frames, {len(labels)} glosses)")
            continue
        items.append(item)
    if too_short:
        log.warning(
            "skipping %d training sample(s) too short for CTC after x%d downsampling: %s",
            len(too_short), DOWNSAMPLE, ", ".join(too_short[:10]),
        )
    if train and not items:
        raise ValueError("no training sample is long enough for CTC; check the corpus or the extraction outputs")
    return items


def _load_feature(path: Path, sample_id: str, stage: str) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(f"features for {sample_id} missing at {path}: run `dvc repro {stage}`")
    return load_npz(path)


def collate(items: list[Item]) -> dict[str, torch.Tensor]:
    """Pad each tensor to the longest in the batch (frame-rate inputs and, in distillation, the
    teacher's downsampled outputs) by the NumPy `pad_inputs` deployment also uses; concatenate
    targets as F.ctc_loss expects."""
    padded = pad_inputs([{k: v.numpy() for k, v in it.tensors.items()} for it in items])
    batch: dict[str, torch.Tensor] = {k: torch.from_numpy(v) for k, v in padded.items()}
    batch["targets"] = torch.tensor([c for it in items for c in it.labels], dtype=torch.long)
    batch["target_lengths"] = torch.tensor([len(it.labels) for it in items], dtype=torch.long)
    return batch


def batches(items: list[Item], batch_size: int, shuffle: bool, generator: torch.Generator | None = None, transform=None,
            sampler=None):
    """Collated batches in order (or shuffled); `transform` maps each item first (augmentation).

    A `sampler` (an iterable of indices, e.g. a DistributedSampler: this process's shard of the
    epoch under DDP) gives the order instead of `shuffle`/`generator`."""
    if sampler is not None:
        order = list(sampler)
    else:
        order = torch.randperm(len(items), generator=generator).tolist() if shuffle else list(range(len(items)))
    for i in range(0, len(order), batch_size):
        chunk = [items[j] for j in order[i : i + batch_size]]
        yield collate([transform(it) for it in chunk] if transform is not None else chunk)
