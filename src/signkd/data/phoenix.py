"""Readers for the RWTH-PHOENIX-Weather corpora in their official on-disk layout.

Phoenix-2014 and Phoenix-2014T ship as a tree of annotation CSVs (`|`-separated) and one folder of
PNG frames per video; the readers turn that tree into `Sample`s (`signkd.data.registry` writes the
manifests). The embedded synthetic corpus is rendered in the 2014T layout, so the 2014T reader
runs on every default `dvc repro`, not only when real data is present.
"""

from __future__ import annotations

import os
from pathlib import Path

from signkd.data.common import (  # noqa: F401  (DatasetError, count_frames: also imported from here)
    IMAGE_SUFFIXES,
    DatasetError,
    DatasetFileMissing,
    count_frames,
    find_root,
    listing,
    read_annotation,
)
from signkd.data.manifest import SPLITS, Sample

FRAMES_SUBDIR = Path("features") / "fullFrame-210x260px"
ANNOTATIONS_SUBDIR = Path("annotations") / "manual"

# Columns each reader uses; a file lacking one is rejected before any frame is looked at.
COLUMNS_2014T = ("name", "video", "speaker", "orth", "translation")
COLUMNS_2014 = ("id", "folder", "signer", "annotation")
_PHOENIX_HINT = f"unpack the official archive there or point the raw root at the folder that contains '{ANNOTATIONS_SUBDIR}'"


def read_phoenix2014t(root: str | os.PathLike) -> dict[str, list[Sample]]:
    """Read Phoenix-2014T (`root` is the `PHOENIX-2014-T` folder or any folder up to two levels above)."""
    base = find_root(Path(root), _annotation_2014t("train"), "Phoenix-2014T", hint=_PHOENIX_HINT)
    return {split: _read_2014t_split(base, split) for split in SPLITS}


def read_phoenix2014t_split(root: str | os.PathLike, split: str) -> list[Sample]:
    """One split of a Phoenix-2014T layout (the studies' extra test set has no other split)."""
    return _read_2014t_split(find_root(Path(root), _annotation_2014t(split), "Phoenix-2014T", hint=_PHOENIX_HINT), split)


def _annotation_2014t(split: str) -> Path:
    return ANNOTATIONS_SUBDIR / f"PHOENIX-2014-T.{split}.corpus.csv"


def _read_2014t_split(base: Path, split: str) -> list[Sample]:
    ann = base / _annotation_2014t(split)
    return _to_samples(read_annotation(ann, COLUMNS_2014T), ann, split, base, id_col="name", pattern_col="video",
                       signer_col="speaker", gloss_col="orth", translation_col="translation")


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
