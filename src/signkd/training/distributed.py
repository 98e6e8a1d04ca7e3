"""Data-parallel training under `torchrun` (PyTorch DDP), and nothing else of a distribution layer.

`torchrun --nproc_per_node=N stages/train_teacher.py` starts N copies of a stage, each with
RANK / LOCAL_RANK / WORLD_SIZE in its environment. The first `train` call joins them into one
process group: NCCL when CUDA is present (one GPU per process, by LOCAL_RANK), gloo on the CPU.
Each process then trains on its shard of every epoch (a `DistributedSampler`), DDP averages the
gradients, and rank 0 alone writes metrics, checkpoints and MLflow runs
(`signkd.tracking.is_main_process`).
Without torchrun (WORLD_SIZE unset or 1) nothing here changes what a single process does.

The module lives in `signkd.training` (not beside `stage.py`) so that every stage that imports it
already depends on `src/signkd/training` in dvc.yaml.
"""

from __future__ import annotations

import atexit
import datetime
import os
from dataclasses import dataclass
from typing import cast

import torch
import torch.distributed as dist

# a rank waits at most this long for the others (e.g. while they score their dev shard)
TIMEOUT = datetime.timedelta(minutes=60)


@dataclass(frozen=True)
class Context:
    rank: int
    world_size: int
    device: torch.device

    @property
    def active(self) -> bool:
        return self.world_size > 1


def launched() -> bool:
    """Whether torchrun started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _device(local_rank: int) -> torch.device:
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def context() -> Context:
    """The process group this process belongs to, joined on first use under torchrun (or one a
    caller set up); a single-process context (rank 0 of 1) otherwise."""
    if dist.is_available() and dist.is_initialized():
        return Context(dist.get_rank(), dist.get_world_size(), _device(int(os.environ.get("LOCAL_RANK", "0"))))
    if not launched():
        return Context(0, 1, torch.device("cpu"))
    device = _device(int(os.environ.get("LOCAL_RANK", "0")))
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=TIMEOUT, device_id=device if device.type == "cuda" else None)
    atexit.register(_shutdown)
    return Context(dist.get_rank(), dist.get_world_size(), device)


def _shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def mean_over_ranks(values: dict[str, float], ctx: Context) -> dict[str, float]:
    """Average per-rank scalars (every rank must pass the same keys)."""
    if not ctx.active:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=_collective_device(ctx))
    dist.all_reduce(t)
    return {k: float(v) / ctx.world_size for k, v in zip(keys, t.tolist())}


def sync_buffers(module: torch.nn.Module, ctx: Context) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics): each rank's last forward
    updated its own, and evaluation and the saved weights must be one model's."""
    if ctx.active:
        for buf in module.buffers():
            dist.broadcast(buf.data, src=0)


def gather_in_order(shard: list, ctx: Context, total: int) -> list:
    """Rank r holds items r, r + N, r + 2N, ... of a list of `total`; every rank gets the whole list."""
    if not ctx.active:
        return shard
    parts: list[list | None] = [None] * ctx.world_size
    dist.all_gather_object(parts, shard)
    out: list = [None] * total
    for rank, part in enumerate(parts):
        out[rank::ctx.world_size] = cast(list, part)  # all_gather_object filled every slot
    return out


def _collective_device(ctx: Context) -> torch.device:
    """NCCL moves CUDA tensors only; gloo CPU ones."""
    return ctx.device if dist.get_backend() == "nccl" else torch.device("cpu")
