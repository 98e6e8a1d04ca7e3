"""Batches for training and evaluation, read from disk one utterance at a time.

A `torch.utils.data.DataLoader` reads, resizes and augments each utterance in worker processes
(`loader.workers`; 0 = in this process) and pins the batches' memory on CUDA, so host memory is
bounded by batch size x workers x prefetch, not by the corpus. Which utterances form a batch, in
what order, and every augmentation's random numbers are decided here, in the main process
(`BatchPlan`): the batches and their augmentations are the same whatever the number of workers,
and the whole random state of an epoch is two generators that a checkpoint can save.

Length bucketing (`loader.bucket`): each window of `bucket` batches of the shuffled order is
sorted by length before it is cut into batches, and the window's batches are shuffled again, so
that utterances of similar length share a batch and padding stays small (Phoenix utterances run
from ~40 to ~300 frames). Under `torchrun` a `DistributedSampler` gives each rank its shard first.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence, cast

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from signkd.training.augment import AugmentConfig, AugmentDraw, apply_augment, draw_augment
from signkd.training.data import Item, collate


@dataclass(frozen=True)
class LoaderConfig:
    workers: int = 0  # DataLoader worker processes (0: read in the training process)
    bucket: int = 0  # batches per length-sorted window (0: plain shuffled batches)
    prefetch: int = 2  # batches each worker reads ahead


class UtteranceDataset(Dataset):
    """Items by index; a key is (index, augmentation or None), so a worker applies the transform
    the main process drew."""

    def __init__(self, items: Sequence[Item]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: tuple[int, AugmentDraw | None]) -> Item:
        index, draw = key
        item = self.items[index].loaded()
        return apply_augment(item, draw) if draw is not None else item


class BatchPlan:
    """The batch sampler: batches of dataset keys, in epoch order, with their augmentation drawn."""

    def __init__(self, items: Sequence[Item], batch_size: int, *, shuffle: bool = False,
                 generator: torch.Generator | None = None, sampler: Iterable[int] | None = None, bucket: int = 0,
                 augment: AugmentConfig | None = None, rng: np.random.Generator | None = None):
        if augment is not None and augment.active and rng is None:
            raise ValueError("an augmenting BatchPlan needs its random generator")
        self.items, self.batch_size, self.shuffle = items, batch_size, shuffle
        self.generator, self.sampler, self.bucket = generator, sampler, bucket
        self.augment = augment if augment is not None and augment.active else None
        self.rng = rng
        self.temporal = not (items and items[0].has_stored_targets)  # frame-aligned targets: no speed change

    def _order(self) -> list[int]:
        if self.sampler is not None:
            return list(self.sampler)
        if self.shuffle:
            return torch.randperm(len(self.items), generator=self.generator).tolist()
        return list(range(len(self.items)))

    def _chunks(self, order: list[int]) -> list[list[int]]:
        size = self.batch_size
        if self.bucket <= 0:
            return [order[i : i + size] for i in range(0, len(order), size)]
        chunks: list[list[int]] = []
        window = self.bucket * size
        for w in range(0, len(order), window):
            by_length = sorted(order[w : w + window], key=lambda i: self.items[i].num_frames)  # stable
            group = [by_length[i : i + size] for i in range(0, len(by_length), size)]
            if self.shuffle:
                group = [group[j] for j in torch.randperm(len(group), generator=self.generator).tolist()]
            chunks.extend(group)
        return chunks

    def __iter__(self) -> Iterator[list[tuple[int, AugmentDraw | None]]]:
        for chunk in self._chunks(self._order()):
            # drawn lazily, batch by batch, in batch order: the random stream is fixed by the plan
            # (with augment set, __init__ made sure of rng)
            yield [(i, draw_augment(self.augment, cast(np.random.Generator, self.rng), self.temporal) if self.augment else None)
                   for i in chunk]

    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler is not None else len(self.items)  # type: ignore[arg-type]
        if self.bucket <= 0:
            return -(-n // self.batch_size)
        window = self.bucket * self.batch_size
        full, rest = divmod(n, window)
        return full * self.bucket + -(-rest // self.batch_size)


def batches(items: Sequence[Item], batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
            *, sampler: Iterable[int] | None = None, augment: AugmentConfig | None = None,
            rng: np.random.Generator | None = None, loader: LoaderConfig = LoaderConfig(),
            pin_memory: bool = False) -> DataLoader:
    """Collated batches of `items` (see BatchPlan for order and augmentation)."""
    plan = BatchPlan(items, batch_size, shuffle=shuffle, generator=generator, sampler=sampler, bucket=loader.bucket,
                     augment=augment, rng=rng)
    workers = min(loader.workers, len(plan)) if len(items) else 0
    return DataLoader(
        UtteranceDataset(items), batch_sampler=plan, collate_fn=functools.partial(collate, video_uint8=True),
        num_workers=workers,
        prefetch_factor=loader.prefetch if workers > 0 else None, pin_memory=pin_memory,
        # its own generator: a DataLoader draws a seed per epoch, which must not shift the global
        # stream that dropout uses
        generator=torch.Generator().manual_seed(0),
    )
