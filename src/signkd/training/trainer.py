"""A plain CTC training loop shared by teacher, student, distillation and tuning trials."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from signkd.inference import DecodeConfig, TorchBackend, score
from signkd.models.recognizer import RecognizerOutput
from signkd.scoring import WerResult
from signkd.seeding import set_seed
from signkd.training.augment import AugmentConfig, augment_item
from signkd.training.data import Item, Vocabulary, batches

LossFn = Callable[[RecognizerOutput, dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, float]]]


def default_device() -> torch.device:
    """CUDA when present, else the CPU (the default everywhere in this project)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    lr: float
    batch_size: int
    seed: int
    decoding: DecodeConfig = DecodeConfig()
    augment: AugmentConfig = AugmentConfig()
    clean: str = "none"  # hypothesis/reference clean-up of the dataset's official scoring


@dataclass
class TrainResult:
    best_epoch: int
    best_dev_wer: float
    history: list[dict[str, float]] = field(default_factory=list)


def masked_ctc(logits: torch.Tensor, lengths: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    log_probs = logits.log_softmax(-1).transpose(0, 1)  # [T', B, C]
    return F.ctc_loss(
        log_probs, batch["targets"], lengths, batch["target_lengths"], blank=0, reduction="mean", zero_infinity=True
    )


def ctc_loss(out: RecognizerOutput, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """VAC-style: CTC on the sequence head and on the temporal-conv head, plus each stream's own
    head in a multi-stream teacher (so every stream learns to recognise, not only the fusion)."""
    seq = masked_ctc(out.seq_logits, out.lengths, batch)
    conv = masked_ctc(out.conv_logits, out.lengths, batch)
    total, parts = seq + conv, {"ctc_seq": seq.item(), "ctc_conv": conv.item()}
    for name, logits in out.stream_logits.items():
        stream = masked_ctc(logits, out.lengths, batch)
        total = total + stream
        parts[f"ctc_{name}"] = stream.item()
    return total, parts


def evaluate(
    model: nn.Module, items: list[Item], vocab: Vocabulary, decoding: DecodeConfig = DecodeConfig(), clean: str = "none"
) -> tuple[WerResult, list[list[str]]]:
    """Official WER and hypotheses of a PyTorch model, through the project's one inference path."""
    return score(TorchBackend(model), items, vocab.glosses, decoding, clean)


def _augmenter(cfg: AugmentConfig, seed: int, items: list[Item]):
    """Per-item augmentation, seeded; frame-aligned teacher targets (distillation) keep the
    frame count, so only the spatial transforms apply to them."""
    if not cfg.active:
        return None
    rng = np.random.default_rng(seed)
    temporal = not any(k.startswith("t_") for k in items[0].tensors)
    return lambda item: augment_item(item, cfg, rng, temporal=temporal)


def train(
    model: nn.Module,
    train_items: list[Item],
    dev_items: list[Item],
    vocab: Vocabulary,
    cfg: TrainConfig,
    loss_fn: LossFn | nn.Module | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    desc: str = "train",
) -> TrainResult:
    """Adam with cosine decay; keeps the weights of the epoch with the lowest dev WER."""
    loss_fn = loss_fn if loss_fn is not None else ctc_loss
    set_seed(cfg.seed)
    device = default_device()
    model.to(device)
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(device)
    params = list(model.parameters())
    if isinstance(loss_fn, nn.Module):
        params += list(loss_fn.parameters())
    optimizer = torch.optim.Adam(params, lr=cfg.lr)
    steps_per_epoch = math.ceil(len(train_items) / cfg.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15
    )
    generator = torch.Generator().manual_seed(cfg.seed)
    transform = _augmenter(cfg.augment, cfg.seed, train_items)
    result = TrainResult(best_epoch=-1, best_dev_wer=math.inf)
    best_state = copy.deepcopy(model.state_dict())
    bar = tqdm(range(1, cfg.epochs + 1), desc=desc, unit="epoch")
    for epoch in bar:
        model.train()
        totals: dict[str, float] = {}
        for batch in batches(train_items, cfg.batch_size, shuffle=True, generator=generator, transform=transform):
            batch = to_device(batch, device)
            loss, parts = loss_fn(model(batch), batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{desc}: non-finite loss at epoch {epoch} ({parts}); lower the learning rate")
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 5.0)
            optimizer.step()
            scheduler.step()
            for k, v in {"loss": loss.item(), **parts}.items():
                totals[k] = totals.get(k, 0.0) + v / steps_per_epoch
        dev, _ = evaluate(model, dev_items, vocab, cfg.decoding, cfg.clean)
        record = {"epoch": epoch, **{f"train_{k}": v for k, v in totals.items()}, "dev_wer": dev.wer}
        result.history.append(record)
        if dev.wer < result.best_dev_wer:
            result.best_dev_wer, result.best_epoch = dev.wer, epoch
            best_state = copy.deepcopy(model.state_dict())
        bar.set_postfix(loss=f"{totals['loss']:.3f}", dev_wer=f"{dev.wer:.1f}", best=f"{result.best_dev_wer:.1f}")
        if on_epoch is not None:
            on_epoch(epoch, record)
    model.load_state_dict(best_state)
    model.cpu()
    return result
