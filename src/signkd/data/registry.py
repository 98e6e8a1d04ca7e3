"""Every dataset reader by name, and `prepare_from_raw`, which turns any of them into manifests.

The one module that knows all readers, so that readers never import each other: adding a
dataset is one reader module (built on `signkd.data.common`) plus one line here.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Callable

from signkd.data.common import DatasetError
from signkd.data.csl_daily import read_csl_daily
from signkd.data.custom import read_custom
from signkd.data.manifest import SPLITS, Sample, write_manifest, write_vocab
from signkd.data.phoenix import read_phoenix2014, read_phoenix2014t

Reader = Callable[..., dict[str, list[Sample]]]

READERS: dict[str, Reader] = {
    "synthetic": read_phoenix2014t,  # rendered in the Phoenix-2014T layout
    "phoenix2014": read_phoenix2014,
    "phoenix2014t": read_phoenix2014t,
    "csl_daily": read_csl_daily,
    "custom": read_custom,
}
DATASETS = tuple(READERS)


def reader(dataset: str) -> Reader:
    if dataset not in READERS:
        raise DatasetError(f"unknown dataset {dataset!r} in data.dataset; choose one of {', '.join(DATASETS)}")
    return READERS[dataset]


def prepare_from_raw(dataset: str, raw_root: str | os.PathLike, manifest_dir: str | os.PathLike, **options) -> dict:
    """Read a raw corpus, write one manifest per split and the train vocabulary; return stats.

    `options` go to the reader (the custom reader's annotation file name). The vocabulary comes
    from the train split only (sorted, so class ids do not depend on file order). Dev/test glosses
    outside it are allowed, as in the official protocol, but counted.
    """
    splits = reader(dataset)(Path(raw_root), **options)
    vocab = sorted({g for s in splits["train"] for g in s.glosses})
    known = set(vocab)
    for split in SPLITS:
        write_manifest(manifest_dir, split, splits[split])
    write_vocab(manifest_dir, vocab)

    stats: dict = {"dataset": dataset, "vocab_size": len(vocab), "counts": {}, "frames": {}, "oov": {}}
    for split in SPLITS:
        samples = splits[split]
        frames = [s.num_frames for s in samples]
        stats["counts"][split] = len(samples)
        stats["frames"][split] = {"min": min(frames), "max": max(frames), "total": sum(frames)}
        if split != "train":
            oov = Counter(g for s in samples for g in s.glosses if g not in known)
            stats["oov"][split] = {"tokens": sum(oov.values()), "types": sorted(oov)}
    return stats
