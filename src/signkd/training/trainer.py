"""A plain CTC training loop shared by teacher, student, distillation and tuning trials.

On CUDA it trains with automatic mixed precision (float16 autocast + a gradient scaler), which
roughly halves activation memory for the ResNet-18 video stream; the CPU path is plain float32.
Under `torchrun` it is data-parallel (DDP; see `signkd.training.distributed`); dev evaluation
stays in float32 and gives every rank the same WER, so all ranks keep the same best epoch.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from signkd.inference import DecodeConfig, TorchBackend, score, transcribe
from signkd.models.recognizer import RecognizerOutput
from signkd.scoring import WerResult, official_wer
from signkd.seeding import set_seed
from signkd.training import distributed, resume
from signkd.training.augment import AugmentConfig
from signkd.training.data import Item, Vocabulary, to_device  # noqa: F401 (to_device re-exported)
from signkd.training.loader import LoaderConfig, batches

LossFn = Callable[[RecognizerOutput, dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, float]]]


def default_device() -> torch.device:
    """CUDA when present, else the CPU (the default everywhere in this project)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """Autocast dtype for training: float16 on CUDA (with a gradient scaler); None = float32."""
    return torch.float16 if device.type == "cuda" else None


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    lr: float
    batch_size: int
    seed: int
    decoding: DecodeConfig = DecodeConfig()
    augment: AugmentConfig = AugmentConfig()
    clean: str = "none"  # hypothesis/reference clean-up of the dataset's official scoring
    schedule: str = "onecycle"  # onecycle (warm-up + cosine decay) | multistep (x gamma after each milestone epoch)
    milestones: tuple[int, ...] = ()
    gamma: float = 0.2
    weight_decay: float = 0.0
    loader: LoaderConfig = LoaderConfig()
    # per process; under torchrun the effective batch is batch_size x the number of processes


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
    model: nn.Module, items: list[Item], vocab: Vocabulary, decoding: DecodeConfig = DecodeConfig(), clean: str = "none",
    loader: LoaderConfig = LoaderConfig(),
) -> tuple[WerResult, list[list[str]]]:
    """Official WER and hypotheses of a PyTorch model, through the project's one inference path."""
    return score(TorchBackend(model, loader=loader), items, vocab.glosses, decoding, clean)


def _scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    """Stepped once per batch: OneCycle over the whole run, or VAC/CorrNet's step decay at epochs."""
    if cfg.schedule == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=[m * steps_per_epoch for m in cfg.milestones], gamma=cfg.gamma
        )
    if cfg.schedule != "onecycle":
        raise ValueError(f"unknown learning-rate schedule {cfg.schedule!r}; use onecycle or multistep")
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15
    )


class _WithLoss(nn.Module):
    """Model and loss as one module, so that DDP also averages the gradients of a loss's own
    parameters (the distillation adapters)."""

    def __init__(self, model: nn.Module, loss_fn: LossFn | nn.Module):
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        return self.loss_fn(self.model(batch), batch)


def _all_finite(loss: torch.Tensor, ctx: distributed.Context) -> bool:
    """Whether the loss is finite on every rank (all ranks must stop together, or the rest hang)."""
    finite = torch.isfinite(loss.detach()).all()
    if ctx.active:
        flag = finite.to(torch.int32).reshape(1)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
        return bool(flag.item())
    return bool(finite)


def _dev_wer(model: nn.Module, items: list[Item], vocab: Vocabulary, cfg: TrainConfig, ctx: distributed.Context) -> WerResult:
    """Dev WER; under DDP each rank decodes every N-th utterance and all score the gathered
    hypotheses, so every rank sees the same number."""
    if not ctx.active:
        return evaluate(model, items, vocab, cfg.decoding, cfg.clean, cfg.loader)[0]
    shard = transcribe(TorchBackend(model, loader=cfg.loader), items[ctx.rank :: ctx.world_size], vocab.glosses, cfg.decoding)
    hyps = distributed.gather_in_order(shard, ctx, len(items))
    return official_wer([list(it.glosses) for it in items], hyps, clean=cfg.clean)


def train(
    model: nn.Module,
    train_items: list[Item],
    dev_items: list[Item],
    vocab: Vocabulary,
    cfg: TrainConfig,
    loss_fn: LossFn | nn.Module | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    desc: str = "train",
    checkpoint: Path | None = None,
) -> TrainResult:
    """Adam with the configured schedule; keeps the weights of the epoch with the lowest dev WER.

    With a `checkpoint` path the state after every epoch is saved there, and a run that finds a
    checkpoint of the same configuration resumes after its epoch (see signkd.training.resume).
    Under torchrun every rank returns the same weights and history; `on_epoch` (MLflow logging)
    runs on rank 0 only, and for resumed epochs again from the saved record."""
    loss_fn = loss_fn if loss_fn is not None else ctc_loss
    set_seed(cfg.seed)
    ctx = distributed.context()
    device = ctx.device if ctx.active else default_device()
    key = resume.run_fingerprint(model, loss_fn, cfg, ctx.world_size, train_items, dev_items) if checkpoint else ""
    model.to(device)
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(device)
    params = list(model.parameters())
    if isinstance(loss_fn, nn.Module):
        params += list(loss_fn.parameters())
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(math.ceil(len(train_items) / ctx.world_size) / cfg.batch_size)
    scheduler = _scheduler(optimizer, cfg, steps_per_epoch)
    streams = resume.RandomStates(
        shuffle=torch.Generator().manual_seed(cfg.seed),
        augment=np.random.default_rng(cfg.seed + ctx.rank) if cfg.augment.active else None,
    )
    step = _WithLoss(model, loss_fn)
    runner: nn.Module = step
    sampler: torch.utils.data.DistributedSampler | None = None
    if ctx.active:
        # DDP starts every rank from rank 0's weights. Every model parameter takes part in the loss;
        # a distillation loss may leave an adapter unused (its level weight is 0), which DDP must know
        runner = nn.parallel.DistributedDataParallel(
            step, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=isinstance(loss_fn, nn.Module),
        )
        # the stubs want a Dataset; DistributedSampler only takes its len()
        sampler = torch.utils.data.DistributedSampler(
            train_items, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=cfg.seed  # type: ignore[arg-type]
        )
        set_seed(cfg.seed + ctx.rank)  # different dropout masks on each rank's shard
    half = amp_dtype(device)
    scaler = torch.amp.GradScaler(device.type, enabled=half is not None)
    result = TrainResult(best_epoch=-1, best_dev_wer=math.inf)
    best_state = copy.deepcopy(model.state_dict())
    first = 1
    saved = resume.load(checkpoint, key)
    if saved is not None:
        resume.restore(saved, module=step, optimizer=optimizer, scheduler=scheduler, scaler=scaler, streams=streams)
        best_state, first = saved["best_state"], saved["epoch"] + 1
        result = TrainResult(saved["best_epoch"], saved["best_dev_wer"], resume.history_of(saved))
        tqdm.write(f"{desc}: resuming after epoch {saved['epoch']} from {checkpoint}")
        if on_epoch is not None and ctx.rank == 0:
            for record in result.history:
                on_epoch(int(record["epoch"]), record)
    epoch_data = batches(train_items, cfg.batch_size, shuffle=True, generator=streams.shuffle, sampler=sampler,
                         augment=cfg.augment, rng=streams.augment, loader=cfg.loader, pin_memory=device.type == "cuda")
    bar = tqdm(range(first, cfg.epochs + 1), desc=desc, unit="epoch", disable=ctx.rank != 0,
               initial=first - 1, total=cfg.epochs)
    for epoch in bar:
        model.train()
        totals: dict[str, float] = {}
        if sampler is not None:
            sampler.set_epoch(epoch)
        for batch in epoch_data:
            batch = to_device(batch, device)
            with torch.autocast(device.type, dtype=half or torch.float32, enabled=half is not None):
                loss, parts = runner(batch)
            if not _all_finite(loss, ctx):
                raise FloatingPointError(f"{desc}: non-finite loss at epoch {epoch} ({parts}); lower the learning rate")
            optimizer.zero_grad()
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)  # clip the true gradients (a no-op without AMP)
            nn.utils.clip_grad_norm_(params, 5.0)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            for k, v in {"loss": loss.item(), **parts}.items():
                totals[k] = totals.get(k, 0.0) + v / steps_per_epoch
        if ctx.active:
            distributed.sync_buffers(step, ctx)
            totals = distributed.mean_over_ranks(totals, ctx)
        dev = _dev_wer(model, dev_items, vocab, cfg, ctx)
        record = {"epoch": epoch, **{f"train_{k}": v for k, v in totals.items()}, "dev_wer": dev.wer}
        result.history.append(record)
        if dev.wer < result.best_dev_wer:
            result.best_dev_wer, result.best_epoch = dev.wer, epoch
            best_state = copy.deepcopy(model.state_dict())
        bar.set_postfix(loss=f"{totals['loss']:.3f}", dev_wer=f"{dev.wer:.1f}", best=f"{result.best_dev_wer:.1f}")
        if on_epoch is not None and ctx.rank == 0:
            on_epoch(epoch, record)
        if checkpoint is not None:
            resume.save(checkpoint, key, epoch=epoch, module=step, optimizer=optimizer, scheduler=scheduler,
                        scaler=scaler, streams=streams, best_state=best_state, best_epoch=result.best_epoch,
                        best_dev_wer=result.best_dev_wer, history=result.history)
    model.load_state_dict(best_state)
    model.cpu()
    return result
