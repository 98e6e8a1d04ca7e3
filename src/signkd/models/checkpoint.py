"""Checkpoints as safetensors weights + a JSON config that rebuilds the architecture (no pickle)."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn

from signkd.io import atomic_path, write_json
from signkd.models.recognizer import MODALITIES, MultiModalTeacher, Student

WEIGHTS = "model.safetensors"
CONFIG = "model.json"


def build_model(config: dict, pretrained: bool = True) -> nn.Module:
    """Rebuild a model from its checkpoint config (what `experiment.*_config` wrote).

    A fresh model for training starts from the config's local pretrained video-backbone weights
    (`video_backbone_weights`); `pretrained=False` skips that file, for a model whose own weights
    are loaded next (a deployed checkpoint must not need the ImageNet file to exist)."""
    kind = config["kind"]
    backbone = (config.get("video_backbone", "small_cnn"), config.get("video_backbone_weights", "") if pretrained else "")
    if kind == "student":
        modality = config.get("modality", "keypoints")
        return Student(modality, config["keypoint_dim"], config["hidden"], config["num_classes"], config["dropout"],
                       config.get("cnn_width", 16), *backbone)
    if kind == "teacher":
        return MultiModalTeacher(
            config["keypoint_dim"], config["hidden"], config["num_classes"], config["fusion"], config["dropout"],
            config.get("cnn_width", 32), config.get("modality_dropout", 0.0), tuple(config.get("modalities", MODALITIES)),
            *backbone,
        )
    raise ValueError(f"unknown model kind {kind!r} in checkpoint config")


def save_checkpoint(model: nn.Module, config: dict, directory: str | Path) -> Path:
    directory = Path(directory)
    weights = directory / WEIGHTS
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp))
    write_json(directory / CONFIG, config)
    return weights


def load_checkpoint(directory: str | Path) -> tuple[nn.Module, dict]:
    directory = Path(directory)
    weights, cfg_path = directory / WEIGHTS, directory / CONFIG
    for p in (weights, cfg_path):
        if not p.is_file():
            raise FileNotFoundError(f"checkpoint file {p} is missing: rerun the stage that trains it (dvc repro)")
    config = json.loads(cfg_path.read_text(encoding="utf-8"))
    model = build_model(config, pretrained=False)
    model.load_state_dict(load_file(str(weights)))
    model.eval()
    return model, config


def model_size_mb(path: str | Path) -> float:
    return Path(path).stat().st_size / 2**20


def freeze(model: nn.Module) -> nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model

