"""Utterances of a split and their padded tensor batches for CTC training.

A split is a list of `Item`s that say where each utterance's features are; the features are read
one utterance at a time when a batch needs them (`signkd.training.loader` runs that in DataLoader
workers), so host memory does not grow with the corpus. Video frames are resized on read to the
size the video stream expects (and cached per video when `frame_cache` is set).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from signkd.data.manifest import Sample
from signkd.errors import InputError
from signkd.features.frames import iter_frames
from signkd.features.keypoints import thinned
from signkd.io import atomic_path, load_npz
from signkd.model_input import (  # noqa: F401 (re-exported)
    ALL_PARTS,
    DOWNSAMPLE,
    INPUTS,
    VIDEO_SCALE,
    keypoint_features,
    num_frames,
    pad_inputs,
)
from signkd.training.frame_cache import cached_video

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
    """Decode and resize every frame: [T, 3, H, W] RGB uint8 (see `frame_cache` for the cached form)."""
    frames = [cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA)[:, :, ::-1] for f in iter_frames(frames_dir)]
    return np.ascontiguousarray(np.stack(frames).transpose(0, 3, 1, 2))


@dataclass(frozen=True)
class FeatureSource:
    keypoint_dir: Path
    flow_dir: Path
    frame_height: int
    frame_width: int
    keypoint_parts: tuple[str, ...] = ALL_PARTS
    keypoint_stride: int = 1  # a strided student's keypoints: detections of every n-th frame only (see `thinned`)
    frame_cache: Path | None = None  # decoded, resized frames kept per video (None: decode on every read)


@dataclass
class Item:
    """One utterance. Its input modalities are read from disk by `inputs()` each time they are
    needed (a DataLoader worker does it), so a split costs memory for its ids and labels only;
    `tensors` holds what lives in memory instead (stored teacher targets, hand-made test items)."""

    id: str
    glosses: tuple[str, ...]
    labels: list[int]
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    source: FeatureSource | None = None
    frames_dir: str = ""
    modalities: tuple[str, ...] = ()  # the modalities `inputs()` reads from `source`
    length: int = 0  # input frames, from the manifest (checked against the files on each read)
    targets: Path | None = None  # folder of stored teacher outputs, one `<id>.safetensors` each

    @property
    def num_frames(self) -> int:
        """Input frames (every input modality has the same count; teacher outputs are shorter)."""
        if self.source is not None and self.modalities:
            return self.length
        return num_frames(self.tensors, self.id)

    @property
    def has_stored_targets(self) -> bool:
        """Whether the item carries a teacher's stored outputs (frame-aligned: no speed change)."""
        return self.targets is not None or any(k.startswith("t_") for k in self.tensors)

    def teacher_outputs(self) -> dict[str, torch.Tensor]:
        """Stored teacher outputs (`t_*`), from memory or from the targets folder."""
        held = {k: v for k, v in self.tensors.items() if k.startswith("t_")}
        return held if held or self.targets is None else read_targets(self.targets, self.id)

    def inputs(self) -> dict[str, torch.Tensor]:
        """The modalities and stored teacher outputs read from disk now, plus the tensors held in memory."""
        stored = read_targets(self.targets, self.id) if self.targets is not None else {}
        if self.source is None or not self.modalities:
            return {**stored, **self.tensors}
        read = read_inputs(self.source, self.id, self.frames_dir, self.modalities)
        lengths = {k: v.shape[0] for k, v in read.items()}
        if set(lengths.values()) != {self.length}:
            raise ValueError(
                f"sample {self.id}: the manifest says {self.length} frames but the features have {lengths}; "
                "re-run `dvc repro` from prepare so that manifests and features agree"
            )
        return {**read, **stored, **self.tensors}

    def loaded(self) -> "Item":
        """A copy with every input in memory (what a batch is built from)."""
        return replace(self, tensors=self.inputs(), source=None, modalities=(), targets=None)

    def restricted(self, modalities: tuple[str, ...]) -> "Item":
        """A copy that reads only `modalities` (in-memory inputs outside them are dropped; teacher
        targets are kept)."""
        keep = {k: v for k, v in self.tensors.items() if k not in INPUTS or k in modalities}
        return replace(self, tensors=keep, modalities=tuple(m for m in self.modalities if m in modalities))


def targets_path(store: Path, sample_id: str) -> Path:
    return Path(store) / f"{sample_id}.safetensors"


def write_targets(store: Path, sample_id: str, tensors: dict[str, torch.Tensor]) -> None:
    """One utterance's teacher outputs, written atomically (a file per utterance: the outputs of a
    whole Phoenix split, ~7 GB, are never gathered in memory)."""
    path = targets_path(store, sample_id)
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))


def read_targets(store: Path, sample_id: str) -> dict[str, torch.Tensor]:
    path = targets_path(store, sample_id)
    if not path.is_file():
        raise FileNotFoundError(f"teacher targets for {sample_id} missing at {path}: run `dvc repro teacher_targets`")
    return load_file(str(path))


def read_inputs(source: FeatureSource, sample_id: str, frames_dir: str, modalities: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """One utterance's model inputs, as stored (video uint8; keypoints and flow float32)."""
    tensors: dict[str, torch.Tensor] = {}
    if "keypoints" in modalities:
        kp = _load_feature(source.keypoint_dir / f"{sample_id}.npz", sample_id, "extract_keypoints")
        kp = thinned(kp, source.keypoint_stride)
        tensors["keypoints"] = torch.from_numpy(keypoint_features(kp, source.keypoint_parts))
    if "flow" in modalities:
        fl = _load_feature(source.flow_dir / f"{sample_id}.npz", sample_id, "extract_flow")
        tensors["flow"] = torch.from_numpy(fl["flow"].astype(np.float32) * (float(fl["scale"]) / FLOW_UNIT))
    if "video" in modalities:
        size = (source.frame_height, source.frame_width)
        video = (cached_video(frames_dir, size, source.frame_cache, load_video) if source.frame_cache is not None
                 else load_video(frames_dir, *size))
        tensors["video"] = torch.from_numpy(video)
    return tensors


def load_items(
    samples: list[Sample],
    vocab: Vocabulary,
    source: FeatureSource,
    modalities: tuple[str, ...],
    *,
    train: bool,
    desc: str = "loading",
) -> list[Item]:
    """Items of a split: ids, labels and where their features are, checked to exist (nothing is
    read yet). Training drops (with a warning) samples CTC cannot align."""
    items: list[Item] = []
    too_short: list[str] = []
    for s in tqdm(samples, desc=desc, unit="video", leave=False):
        labels = vocab.encode(s.glosses, s.id) if train else [vocab.index.get(g, 0) for g in s.glosses]
        _check_features(source, s, modalities)
        item = Item(s.id, s.glosses, labels, source=source, frames_dir=s.frames_dir, modalities=tuple(modalities),
                    length=s.num_frames)
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


def _check_features(source: FeatureSource, sample: Sample, modalities: tuple[str, ...]) -> None:
    """Fail before training starts, not hours into it, when a feature file is missing."""
    stages = {"keypoints": (source.keypoint_dir, "extract_keypoints"), "flow": (source.flow_dir, "extract_flow")}
    for modality, (directory, stage) in stages.items():
        path = directory / f"{sample.id}.npz"
        if modality in modalities and not path.is_file():
            raise FileNotFoundError(f"features for {sample.id} missing at {path}: run `dvc repro {stage}`")
    if "video" in modalities and not Path(sample.frames_dir).exists():
        raise FileNotFoundError(f"frames of {sample.id} missing at {sample.frames_dir}: run `dvc repro prepare`")


def _load_feature(path: Path, sample_id: str, stage: str) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(f"features for {sample_id} missing at {path}: run `dvc repro {stage}`")
    return load_npz(path)


def collate(items: list[Item], video_uint8: bool = False) -> dict[str, torch.Tensor]:
    """Pad each tensor to the longest in the batch (frame-rate inputs and, in distillation, the
    teacher's downsampled outputs) by the NumPy `pad_inputs` deployment also uses; concatenate
    targets as F.ctc_loss expects. Items not yet in memory are read here. `video_uint8`: video
    stays uint8 until `to_device` scales it (what the DataLoader's batches do)."""
    padded = pad_inputs([{k: v.numpy() for k, v in it.inputs().items()} for it in items], video_uint8=video_uint8)
    batch: dict[str, torch.Tensor] = {k: torch.from_numpy(v) for k, v in padded.items()}
    batch["targets"] = torch.tensor([c for it in items for c in it.labels], dtype=torch.long)
    batch["target_lengths"] = torch.tensor([len(it.labels) for it in items], dtype=torch.long)
    return batch


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """A collated batch on the device, as the model reads it: uint8 video scaled there (by the
    same table as `model_scale`) with its padded frames zero, as `pad_inputs` would give them."""
    out = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    if "video" in out and out["video"].dtype == torch.uint8:
        video = torch.from_numpy(VIDEO_SCALE).to(device)[out["video"].long()]
        t = video.shape[1]
        padded = torch.arange(t, device=device)[None, :] >= out["lengths"][:, None]
        video[padded] = 0.0
        out["video"] = video
    return out
