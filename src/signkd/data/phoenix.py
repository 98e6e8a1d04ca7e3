"""Readers for the RWTH-PHOENIX-Weather corpora in their official on-disk layout.

Phoenix-2014 and Phoenix-2014T ship as a tree of annotation CSVs (`|`-separated) and one folder of
PNG frames per video. The readers turn that tree into `Sample`s, and `prepare_from_raw` writes the
manifests every later stage reads (for every supported dataset, CSL-Daily included: its reader lives
in `signkd.data.csl_daily` and shares the helpers here). The embedded synthetic corpus is rendered
in the 2014T layout, so the 2014T reader runs on every default `dvc repro`, not only when real data
is present.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from pathlib import Path

from signkd.data.manifest import SPLITS, Sample, write_manifest, write_vocab

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
FRAMES_SUBDIR = Path("features") / "fullFrame-210x260px"
ANNOTATIONS_SUBDIR = Path("annotations") / "manual"

# Columns each reader uses; a file lacking one is rejected before any frame is looked at.
COLUMNS_2014T = ("name", "video", "speaker", "orth", "translation")
COLUMNS_2014 = ("id", "folder", "signer", "annotation")

DATASETS = ("phoenix2014", "phoenix2014t", "csl_daily", "synthetic")
_MAX_LISTED = 5


class DatasetError(ValueError):
    """The dataset tree is not in the expected layout; the message says what to fix."""


class DatasetFileMissing(DatasetError, FileNotFoundError):
    """An annotation file or frame folder the layout requires is absent."""


def count_frames(frames_dir: str | os.PathLike) -> int:
    """Number of image files directly in `frames_dir` (one directory listing; 0 if absent)."""
    try:
        with os.scandir(frames_dir) as entries:
            return sum(1 for e in entries if e.name.lower().endswith(IMAGE_SUFFIXES) and e.is_file())
    except (FileNotFoundError, NotADirectoryError):
        return 0


def read_phoenix2014t(root: str | os.PathLike) -> dict[str, list[Sample]]:
    """Read Phoenix-2014T (`root` is the `PHOENIX-2014-T` folder or any folder up to two levels above)."""
    base = find_root(Path(root), ANNOTATIONS_SUBDIR / "PHOENIX-2014-T.train.corpus.csv", "Phoenix-2014T",
                     hint=_PHOENIX_HINT)
    out = {}
    for split in SPLITS:
        ann = base / ANNOTATIONS_SUBDIR / f"PHOENIX-2014-T.{split}.corpus.csv"
        rows = read_annotation(ann, COLUMNS_2014T)
        out[split] = _to_samples(
            rows, ann, split, base,
            id_col="name", pattern_col="video", signer_col="speaker", gloss_col="orth",
            translation_col="translation",
        )
    return out


def read_phoenix2014(root: str | os.PathLike) -> dict[str, list[Sample]]:
    """Read Phoenix-2014 multi-signer (`root` is `phoenix-2014-multisigner` or a folder up to two levels above)."""
    base = find_root(Path(root), ANNOTATIONS_SUBDIR / "train.corpus.csv", "Phoenix-2014",
                     hint=_PHOENIX_HINT, prefer="multisigner")
    out = {}
    for split in SPLITS:
        ann = base / ANNOTATIONS_SUBDIR / f"{split}.corpus.csv"
        rows = read_annotation(ann, COLUMNS_2014)
        out[split] = _to_samples(
            rows, ann, split, base,
            id_col="id", pattern_col="folder", signer_col="signer", gloss_col="annotation",
            translation_col=None,
        )
    return out


def _read_csl_daily(root: str | os.PathLike) -> dict[str, list[Sample]]:
    # imported on use: csl_daily imports this module's helpers
    from signkd.data.csl_daily import read_csl_daily

    return read_csl_daily(root)


READERS = {
    "phoenix2014": read_phoenix2014,
    "phoenix2014t": read_phoenix2014t,
    "csl_daily": _read_csl_daily,
    "synthetic": read_phoenix2014t,
}


def prepare_from_raw(dataset: str, raw_root: str | os.PathLike, manifest_dir: str | os.PathLike) -> dict:
    """Read a raw corpus, write one manifest per split and the train vocabulary; return stats.

    The vocabulary comes from the train split only (sorted, so class ids do not depend on file
    order). Dev/test glosses outside it are allowed, as in the official protocol, but counted.
    """
    if dataset not in READERS:
        raise DatasetError(f"unknown dataset {dataset!r} in data.dataset; choose one of {', '.join(DATASETS)}")
    splits = READERS[dataset](Path(raw_root))
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


_PHOENIX_HINT = f"unpack the official archive there or point the raw root at the folder that contains '{ANNOTATIONS_SUBDIR}'"


def find_root(root: Path, rel: Path, label: str, *, hint: str, prefer: str | None = None) -> Path:
    """The folder holding the marker file `rel`: `root` itself or up to two levels below.

    Archives unpack with one or two wrapper folders (e.g. `PHOENIX-2014-T-release-v3/PHOENIX-2014-T`),
    so users may point at any of them. Several matches are an error unless exactly one folder
    name contains `prefer`.
    """
    if not root.is_dir():
        raise DatasetFileMissing(f"{label} root {root} does not exist or is not a folder; set data.raw_dir to the unpacked dataset")
    for level in ([root], root.glob("*"), root.glob("*/*")):
        found = sorted(p for p in level if (p / rel).is_file())
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            preferred = [p for p in found if prefer and prefer in p.name]
            if len(preferred) == 1:
                return preferred[0]
            raise DatasetError(
                f"several {label} copies under {root}: {', '.join(map(str, found))}; point the raw root at one of them"
            )
    raise DatasetFileMissing(f"{label} annotation file {root / rel} is missing (also looked one and two folders below {root}); {hint}")


def read_annotation(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """Rows of a `|`-separated corpus file with their line numbers, after checking its header."""
    if not path.is_file():
        raise DatasetFileMissing(f"annotation file {path} is missing; the dataset archive looks incomplete, unpack it again")
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter="|", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if not header:
            raise DatasetError(f"annotation file {path} is empty; expected a header {'|'.join(columns)} and one line per video")
        header = [h.strip() for h in header]
        missing = [c for c in columns if c not in header]
        if missing:
            raise DatasetError(
                f"annotation file {path} lacks column(s) {', '.join(missing)} (header is {'|'.join(header)}, "
                f"expected at least {'|'.join(columns)}); is this the right dataset for data.dataset?"
            )
        rows = []
        for line_no, fields in enumerate(reader, start=2):
            if not any(x.strip() for x in fields):
                continue
            if len(fields) != len(header):
                raise DatasetError(
                    f"{path}:{line_no} has {len(fields)} fields, the header has {len(header)}; the file is damaged"
                )
            rows.append((line_no, {h: v.strip() for h, v in zip(header, fields)}))
    if not rows:
        raise DatasetError(f"annotation file {path} has a header but no videos; the dataset archive looks incomplete")
    return rows


def _to_samples(
    rows, ann: Path, split: str, base: Path, *,
    id_col: str, pattern_col: str, signer_col: str, gloss_col: str, translation_col: str | None,
) -> list[Sample]:
    """Locate each video's frame folder and count its frames; report every broken video at once."""
    split_dir = base / FRAMES_SUBDIR / split
    samples, missing, empty, no_gloss = [], [], [], []
    for line_no, row in rows:
        vid = row[id_col]
        glosses = tuple(row[gloss_col].split())
        if not glosses:
            no_gloss.append(f"{vid} (line {line_no})")
            continue
        frames_dir, n = _locate_frames(split_dir, vid, row[pattern_col])
        if frames_dir is None:
            missing.append(f"{vid}: {split_dir / vid}")
            continue
        if n == 0:
            empty.append(f"{vid}: {frames_dir}")
            continue
        samples.append(Sample(
            id=vid, split=split, frames_dir=str(frames_dir), signer=row[signer_col], num_frames=n,
            glosses=glosses, translation=row[translation_col] if translation_col else "",
        ))
    if no_gloss:
        raise DatasetError(f"{ann}: {len(no_gloss)} video(s) with an empty '{gloss_col}' column: {listing(no_gloss)}; "
                           "fix or remove those lines")
    if missing:
        raise DatasetFileMissing(f"{split} split of {ann}: {len(missing)} frame folder(s) missing: {listing(missing)}; "
                                 f"the frames archive is incomplete, unpack it again into {base}")
    if empty:
        raise DatasetFileMissing(f"{split} split of {ann}: {len(empty)} frame folder(s) hold no images "
                                 f"({'/'.join(IMAGE_SUFFIXES)}): {listing(empty)}; unpack the dataset again")
    return samples


def _locate_frames(split_dir: Path, vid: str, pattern: str) -> tuple[Path | None, int]:
    """The frame folder named by the glob column (`<id>/1/*.png`), falling back to `<id>/` itself.

    The 2014T release names `<name>/1/*.png` but stores frames directly in `<name>/`; both occur.
    """
    candidates = []
    if pattern:
        parent = Path(pattern).parent if any(ch in pattern for ch in "*?[") else Path(pattern)
        if str(parent) not in ("", "."):
            candidates.append(split_dir / parent)
    candidates += [split_dir / vid, split_dir / vid / "1"]
    first_existing = None
    for cand in dict.fromkeys(candidates):
        n = count_frames(cand)
        if n:
            return cand, n
        if first_existing is None and cand.is_dir():
            first_existing = cand
    return first_existing, 0


def listing(items: list[str]) -> str:
    more = f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return "; ".join(items[:_MAX_LISTED]) + more
