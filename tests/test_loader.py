"""The streaming loader: batches that do not depend on the number of workers, uint8 video scaled on
the device exactly as in deployment, length bucketing that cuts padding without losing an item."""

from __future__ import annotations

import numpy as np
import torch

from signkd.training.augment import AugmentConfig
from signkd.training.data import collate, to_device
from signkd.training.loader import LoaderConfig, batches
from tests.toy_data import toy_items

AUGMENT = AugmentConfig(speed=0.2, scale=0.1, rotate=5.0, shift=0.05)


def _epoch(items, workers: int, bucket: int = 0) -> list[dict[str, torch.Tensor]]:
    return list(batches(items, 4, shuffle=True, generator=torch.Generator().manual_seed(3), augment=AUGMENT,
                        rng=np.random.default_rng(3), loader=LoaderConfig(workers=workers, bucket=bucket)))


def test_batches_and_augmentations_are_the_same_with_any_number_of_workers():
    items = toy_items(10, with_video=True)
    alone, parallel = _epoch(items, 0), _epoch(items, 2)
    assert len(alone) == len(parallel) == 3
    for a, b in zip(alone, parallel):
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key
    unaugmented = list(batches(items, 4, shuffle=True, generator=torch.Generator().manual_seed(3)))
    assert any(a["video"].shape != u["video"].shape or not torch.equal(a["video"], u["video"])
               for a, u in zip(alone, unaugmented)), "the augmentation must have acted"


def test_uint8_video_scaled_on_the_device_is_the_float_batch_bit_for_bit():
    items = toy_items(3, with_video=True)  # different lengths: the shorter ones are padded
    raw, scaled = collate(items, video_uint8=True), collate(items)
    assert raw["video"].dtype == torch.uint8 and scaled["video"].dtype == torch.float32
    assert raw["video"].element_size() * 4 == scaled["video"].element_size()
    on_device = to_device(raw, torch.device("cpu"))
    assert torch.equal(on_device["video"], scaled["video"])  # padded frames are 0, as pad_inputs leaves them
    assert torch.equal(on_device["keypoints"], scaled["keypoints"])


def test_length_bucketing_cuts_padding_and_keeps_every_item_once_per_epoch():
    items = toy_items(32, seed=4)
    lengths = [it.num_frames for it in items]

    def padding(batch_list) -> int:
        return sum(int(b["lengths"].max()) * len(b["lengths"]) - int(b["lengths"].sum()) for b in batch_list)

    def plain(bucket: int):
        return list(batches(items, 4, shuffle=True, generator=torch.Generator().manual_seed(0),
                            loader=LoaderConfig(bucket=bucket)))

    flat, bucketed = plain(0), plain(8)
    assert len(flat) == len(bucketed) == 8
    assert padding(bucketed) < padding(flat) / 2
    seen = sorted(int(n) for b in bucketed for n in b["lengths"])
    assert seen == sorted(lengths)
