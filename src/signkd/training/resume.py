"""End-of-epoch training checkpoints, so that a killed run resumes where it stopped.

A checkpoint holds everything the next epoch depends on: the weights (model and a distillation
loss's adapters), optimizer, learning-rate scheduler, AMP gradient scaler, the random states
(torch's global stream that dropout draws from, CUDA's, the shuffle generator, the augmentation
generator, NumPy's and Python's), the epoch, the best weights so far and the training record. A
resumed run therefore makes the same batches, augmentations and dropout masks as an uninterrupted
one, and ends with byte-identical weights on the same machine.

Checkpoints live in `models/.resume/<stage>/`, outside every DVC output (DVC deletes a stage's
outputs before it reruns it, and a changing file there would make the stage look changed). A
checkpoint is used only when its fingerprint matches the run: the model config, the training
config, the loss and the training and dev ids, so changed params never resume a stale run. It is
written atomically with `torch.save` and read with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from signkd.stage import RESUME_DIR

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


def resume_dir(stage: str) -> Path:
    """A stage's folder of resumable state (removed by `run_stage` when the stage succeeds)."""
    return RESUME_DIR / stage


def resume_path(stage: str, name: str) -> Path:
    """Where one training loop of a stage keeps its checkpoint (per rank under torchrun)."""
    rank = int(os.environ.get("RANK", "0"))
    suffix = "" if rank == 0 else f".rank{rank}"
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return resume_dir(stage) / f"{safe}{suffix}.pt"


def fingerprint(*parts: object) -> str:
    """A stable hash of what shapes a training run (JSON of its parts; reprs for the rest)."""
    text = json.dumps(parts, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def tensors_digest(tensors) -> str:
    """A hash of tensors' values (initial weights, a frozen teacher, stored targets)."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def run_fingerprint(model: torch.nn.Module, loss_fn, cfg, world_size: int, train_items, dev_items) -> str:
    """What shapes a training run: the model's initial weights, the loss (with a frozen online
    teacher's weights), the training config, the process count, and the training and dev
    utterances (with any stored teacher targets)."""
    if isinstance(loss_fn, torch.nn.Module):
        teacher = getattr(loss_fn, "_online", ())
        loss = [repr(loss_fn), tensors_digest(loss_fn.state_dict().values()),
                tensors_digest(teacher[0].state_dict().values()) if teacher else ""]
    else:
        loss = [f"{loss_fn.__module__}.{loss_fn.__qualname__}"]
    stored = tensors_digest(v for it in train_items for k, v in sorted(it.tensors.items()) if k.startswith("t_"))
    stored += _files_digest(it.targets / f"{it.id}.safetensors" for it in train_items if it.targets is not None)
    return fingerprint(repr(model), tensors_digest(model.state_dict().values()), loss, repr(cfg), world_size,
                       [it.id for it in train_items], [it.id for it in dev_items], stored)


def _files_digest(paths) -> str:
    """Contents, not modification times: targets rewritten identically (a resumed chain writes its
    assistant's again) must not invalidate the run."""
    h = hashlib.sha256()
    for path in paths:
        h.update(Path(path).read_bytes())
    return h.hexdigest()


@dataclass
class RandomStates:
    """The generators a training epoch draws from, besides the global ones."""

    shuffle: torch.Generator
    augment: np.random.Generator | None


def _rng_state(streams: RandomStates) -> dict:
    state = {
        "torch": torch.get_rng_state(),
        "shuffle": streams.shuffle.get_state(),
        "numpy": json.dumps(np.random.get_state(legacy=False), default=_jsonable),
        "python": json.dumps(random.getstate()),
        "augment": json.dumps(streams.augment.bit_generator.state) if streams.augment is not None else "",
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _jsonable(value: object) -> object:
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value)} in a checkpoint")


def _set_rng_state(state: dict, streams: RandomStates) -> None:
    torch.set_rng_state(state["torch"])
    streams.shuffle.set_state(state["shuffle"])
    numpy_state = json.loads(state["numpy"])
    numpy_state["state"]["key"] = np.asarray(numpy_state["state"]["key"], dtype=np.uint32)
    np.random.set_state(numpy_state)
    py = json.loads(state["python"])
    random.setstate((py[0], tuple(py[1]), py[2]))
    if streams.augment is not None:
        streams.augment.bit_generator.state = json.loads(state["augment"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: Path, key: str, *, epoch: int, module: torch.nn.Module, optimizer, scheduler, scaler,
         streams: RandomStates, best_state: dict, best_epoch: int, best_dev_wer: float, history: list[dict]) -> None:
    """Write the state after `epoch` atomically (a kill mid-write leaves the previous one)."""
    state = {
        "format_version": FORMAT_VERSION,
        "fingerprint": key,
        "epoch": epoch,
        "module": module.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": _rng_state(streams),
        "best_state": best_state,
        "best_epoch": best_epoch,
        "best_dev_wer": best_dev_wer,
        "history": json.dumps(history),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load(path: Path | None, key: str) -> dict | None:
    """The checkpoint at `path` if it belongs to this run (same fingerprint), else None."""
    if path is None or not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged file is not worth a crash: train from the start
        log.warning("ignoring unreadable training checkpoint %s (%s); training from epoch 1", path, err)
        return None
    if state.get("format_version") != FORMAT_VERSION or state.get("fingerprint") != key:
        log.warning("training checkpoint %s is from another configuration; training from epoch 1", path)
        return None
    return state


def restore(state: dict, *, module: torch.nn.Module, optimizer, scheduler, scaler, streams: RandomStates) -> None:
    """Put a run back into the state `save` recorded (the caller takes epoch, best and history)."""
    module.load_state_dict(state["module"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    _set_rng_state(state["rng"], streams)


def history_of(state: dict) -> list[dict]:
    return json.loads(state["history"])
