"""ResNet-18 frame encoder for the video stream at real-dataset scale (`model.video_backbone: resnet18`).

The reference CSLR models (VAC, CorrNet, SlowFastSign) encode each 224x224 frame with an
ImageNet ResNet-18. ResNet-18 is written here in plain torch rather than imported from
torchvision because the project pins the torch 2.13.0 CPU wheel, and no torchvision wheel
installs next to it (PyPI's fails at import with "operator torchvision::nms does not exist");
a model layer should not depend on an image library for 60 lines of code. The module and
parameter names are torchvision's (`conv1`, `bn1`, `layer1.0.conv1`, `layer2.0.downsample.0`,
`fc`, ...), so a torchvision `resnet18` state dict that a user has saved locally loads with
`strict=True`. Pretrained weights come only from a local file (`model.video_backbone_weights`),
never from a download: a training machine may have no network, and a run must not depend on
what a URL serves today.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from signkd.models.blocks import valid_mask

FEATURES = 512  # ResNet-18's pooled feature width
# torchvision's ImageNet normalisation: pretrained filters expect inputs standardised this way
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (a 1x1 projection when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = _conv3x3(cin, cout, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18(nn.Module):
    """ResNet-18 with torchvision's names and initialisation; `num_classes=None` leaves out `fc`."""

    layer1: nn.Sequential  # set with setattr in __init__
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    def __init__(self, num_classes: int | None = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        widths, cin = (64, 128, 256, 512), 64
        for i, width in enumerate(widths, start=1):
            stride = 1 if i == 1 else 2
            setattr(self, f"layer{i}", nn.Sequential(BasicBlock(cin, width, stride), BasicBlock(width, width)))
            cin = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(FEATURES, num_classes) if num_classes is not None else None
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] (ImageNet-normalised) -> [N, 512] pooled features."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.features(x)
        return feats if self.fc is None else self.fc(feats)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a local file: safetensors, or a torch file read with weights_only=True
    (no pickled code runs). A checkpoint dict holding it under "state_dict" is unwrapped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"model.video_backbone_weights: {path} is not a file; save torchvision's resnet18 state dict there "
            "(torch.save(model.state_dict(), path) or safetensors) or set it to \"\" to train from scratch"
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict (a mapping of parameter names to tensors)")
    return state


def load_resnet18(path: str | Path) -> ResNet18:
    """torchvision-format ResNet-18 weights from a local file, loaded with strict=True; the
    classifier's size is taken from the file (ImageNet's 1000 or a fine-tuned head)."""
    state = read_state_dict(path)
    fc = state.get("fc.weight")
    model = ResNet18(num_classes=int(fc.shape[0]) if fc is not None else None)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path} is not a torchvision resnet18 state dict: {err}") from None
    return model


class ResNetFrameEncoder(nn.Module):
    """Per-frame ResNet-18 (no classifier) + a linear projection to the model width.

    As `FrameCNN`, only valid frames go through the backbone, so padding never reaches its
    BatchNorm statistics and an utterance gives the same features alone or in a padded batch."""

    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor

    def __init__(self, out_dim: int, weights: str | Path = ""):
        super().__init__()
        self.backbone = load_resnet18(weights) if weights else ResNet18()
        self.backbone.fc = None  # the ImageNet classifier is not used
        self.proj = nn.Linear(FEATURES, out_dim)
        # collate scales RGB to [-0.5, 0.5]; pretrained filters expect ImageNet-standardised input
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) - 0.5, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """[B, T, 3, H, W] -> [B, T, out_dim], zero on padded frames."""
        mask = valid_mask(frames, lengths)
        feats = self.proj(self.backbone.features((frames[mask] - self.mean) / self.std))
        out = feats.new_zeros((*mask.shape, feats.shape[-1]))
        out[mask] = feats
        return out
