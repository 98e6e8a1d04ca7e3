"""Checkpoints as safetensors weights + the model's spec as JSON, which rebuilds the architecture (no pickle)."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn

from signkd.io import atomic_path, write_json
from signkd.models.recognizer import MultiModalTeacher, Student
from signkd.models.spec import ModelSpec, StudentArchitecture, migrate

WEIGHTS = "model.safetensors"
CONFIG = "model.json"


def build_model(spec: ModelSpec, pretrained: bool = True) -> nn.Module:
    """Rebuild a model from its spec (what `experiment.*_config` built, or a checkpoint's).

    A fresh model for training starts from the spec's local pretrained video-backbone weights
    (`video_backbone_weights`); `pretrained=False` skips that file, for a model whose own weights
    are loaded next (a deployed checkpoint must not need the ImageNet file to exist)."""
    arch = spec.architecture
    backbone = (arch.video_backbone, arch.video_backbone_weights if pretrained else "")
    if isinstance(arch, StudentArchitecture):
        return Student(arch.modality, arch.keypoint_dim, arch.hidden, arch.num_classes, arch.dropout, arch.cnn_width, *backbone)
    return MultiModalTeacher(arch.keypoint_dim, arch.hidden, arch.num_classes, arch.fusion, arch.dropout, arch.cnn_width,
                             arch.modality_dropout, arch.modalities, *backbone)


def save_checkpoint(model: nn.Module, spec: ModelSpec, directory: str | Path) -> Path:
    directory = Path(directory)
    weights = directory / WEIGHTS
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp))
    write_json(directory / CONFIG, spec.to_json())
    return weights


def load_checkpoint(directory: str | Path) -> tuple[nn.Module, ModelSpec]:
    """The model in eval mode and its spec; a model.json of an older format is migrated."""
    directory = Path(directory)
    weights, cfg_path = directory / WEIGHTS, directory / CONFIG
    for p in (weights, cfg_path):
        if not p.is_file():
            raise FileNotFoundError(f"checkpoint file {p} is missing: rerun the stage that trains it (dvc repro)")
    spec = migrate(json.loads(cfg_path.read_text(encoding="utf-8")), str(cfg_path))
    model = build_model(spec, pretrained=False)
    model.load_state_dict(load_file(str(weights)))
    model.eval()
    return model, spec


def model_size_mb(path: str | Path) -> float:
    return Path(path).stat().st_size / 2**20


def freeze(model: nn.Module) -> nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
