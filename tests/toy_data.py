"""A toy CTC task built in memory: each gloss is a fixed random feature pattern held for a few
frames, so a model that learns anything at all gets the WER well below 100%."""

from __future__ import annotations

import numpy as np
import torch

from signkd.features.keypoints import PARTS
from signkd.models.spec import FORMAT_VERSION, ModelSpec, Preprocessing, StudentArchitecture
from signkd.training.data import Item, Vocabulary

GLOSSES = ["REGEN", "SONNE", "WIND", "NORD", "SUED"]


def toy_items(n: int, feat_dim: int = 12, seed: int = 0, with_video: bool = False) -> list[Item]:
    rng = np.random.default_rng(seed)
    patterns = np.random.default_rng(99).normal(size=(len(GLOSSES), feat_dim)).astype(np.float32)
    vocab = Vocabulary(GLOSSES)
    items = []
    for i in range(n):
        glosses = tuple(rng.choice(GLOSSES, size=rng.integers(1, 4), replace=False).tolist())
        frames = []
        for g in glosses:
            hold = rng.integers(8, 12)
            frames += [patterns[GLOSSES.index(g)]] * hold + [np.zeros(feat_dim, np.float32)] * 2
        x = np.stack(frames) + rng.normal(scale=0.1, size=(len(frames), feat_dim)).astype(np.float32)
        tensors = {"keypoints": torch.from_numpy(x.astype(np.float32))}
        if with_video:
            t = len(frames)
            tensors["video"] = torch.from_numpy(rng.integers(0, 255, size=(t, 3, 16, 16), dtype=np.uint8))
            tensors["flow"] = torch.from_numpy(rng.normal(size=(t, 2, 8, 8)).astype(np.float32))
        items.append(Item(f"toy{i:03d}", glosses, vocab.encode(glosses), tensors))
    return items


def toy_vocab() -> Vocabulary:
    return Vocabulary(GLOSSES)


def student_spec(glosses: list[str], keypoint_dim: int, hidden: int, *, dropout: float = 0.1, max_gap: int = 4,
                 **architecture) -> ModelSpec:
    """The spec of a small keypoint student (every keypoint part, greedy decoding) as the pipeline
    stores it; `architecture` replaces fields (e.g. a video student)."""
    return ModelSpec(
        format_version=FORMAT_VERSION,
        vocab=tuple(glosses),
        preprocessing=Preprocessing(
            keypoint_parts=tuple(PARTS), max_gap=max_gap, frame_stride=1, fps=25.0, frame_height=32, frame_width=26,
            decode_method="greedy", beam_width=1, keypoint_backend="holistic", keypoint_models={}),
        architecture=StudentArchitecture(
            kind="student", modality="keypoints", keypoint_dim=keypoint_dim, hidden=hidden, num_classes=len(glosses) + 1,
            dropout=dropout, cnn_width=16, video_backbone="small_cnn", video_backbone_weights=""),
    ).with_architecture(**architecture)
