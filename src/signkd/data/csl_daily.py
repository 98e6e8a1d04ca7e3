"""Reader for CSL-Daily (Chinese Sign Language, daily-life sentences) in its official release layout.

CSL-Daily is handed out only after its licence agreement is signed, so the pipeline never
downloads it: the user copies the release to a folder and points the raw root at it (the root
itself or a folder up to two levels above it). The reader needs

    sentence_label/video_map.txt      `index|name|length|gloss|char|word|postag`, one line per video
    sentence_label/split_1.txt        `name|split`, split being train / dev / test
    sentence/frames_512x512/<name>/   the video's frames as JPEG files

(`sentence_frames-512x512/frames_512x512/<name>/`, the name some copies unpack to, is accepted too).
A sample's glosses are the `gloss` column split on whitespace; its translation is the Chinese
sentence of the `char` column (or of `word` where `char` is absent) with the tokenising spaces
removed. The signer is the `P` field of the video name (`S000123_P0004_T00` -> `P0004`), `unknown`
for a name not of that form.

The release has one known inconsistency, repaired here exactly as public CSL-Daily loaders do:
`split_1.txt` assigns `S000005_P0004_T00`, which `video_map.txt` does not describe, and leaves
out `S000007_P0003_T00`, which it does; the split entry is read as the latter. That video is
reported with an empty gloss in public ground-truth files, so if its `gloss` column is empty it is
left out with a warning. Every other mismatch between the two files, empty gloss, missing or
incomplete frame folder is an error that lists the videos concerned.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from signkd.data.common import (
    IMAGE_SUFFIXES,
    DatasetError,
    DatasetFileMissing,
    count_frames,
    find_root,
    listing,
    read_annotation,
)
from signkd.data.manifest import SPLITS, Sample

LABEL_SUBDIR = Path("sentence_label")
VIDEO_MAP = LABEL_SUBDIR / "video_map.txt"
SPLIT_FILE = LABEL_SUBDIR / "split_1.txt"
FRAME_SUBDIRS = (Path("sentence") / "frames_512x512", Path("sentence_frames-512x512") / "frames_512x512")

COLUMNS_VIDEO_MAP = ("name", "length", "gloss")
TRANSLATION_COLUMNS = ("char", "word")  # the first one present is used
COLUMNS_SPLIT = ("name", "split")

# split_1.txt name -> the video_map.txt name it stands for (applied only when the pattern is exact)
KNOWN_SPLIT_TYPOS = {"S000005_P0004_T00": "S000007_P0003_T00"}
# videos the release ships without glosses: skipped with a warning rather than failing the read
KNOWN_UNANNOTATED = frozenset({"S000007_P0003_T00"})

_NAME = re.compile(r"^S\d+_(P\d+)_T\d+$")
_HINT = ("CSL-Daily needs the signed licence agreement, so it is never downloaded: copy the release there "
         f"(the folder that contains '{LABEL_SUBDIR}' and 'sentence') or point the raw root at it")

log = logging.getLogger(__name__)


def read_csl_daily(root: str | os.PathLike) -> dict[str, list[Sample]]:
    """Read CSL-Daily (`root` is the release folder or any folder up to two levels above it)."""
    base = find_root(Path(root), VIDEO_MAP, "CSL-Daily", hint=_HINT)
    video_map, split_file = base / VIDEO_MAP, base / SPLIT_FILE
    videos = read_annotation(video_map, COLUMNS_VIDEO_MAP)
    translation_col = next((c for c in TRANSLATION_COLUMNS if c in videos[0][1]), None)
    if translation_col is None:
        raise DatasetError(f"{video_map} has neither a 'char' nor a 'word' column (the sentence); "
                           "expected the header index|name|length|gloss|char|word|postag")
    assigned = _read_splits(split_file)
    _check_unique(video_map, [(line, row["name"]) for line, row in videos])
    described = {row["name"] for _, row in videos}
    _repair_known_typos(assigned, described)

    unassigned = [f"{row['name']} (line {line})" for line, row in videos if row["name"] not in assigned]
    undescribed = [f"{name} (line {line})" for name, (_, line) in assigned.items() if name not in described]
    if undescribed:
        raise DatasetError(f"{split_file} names {len(undescribed)} video(s) that {video_map} does not describe: "
                           f"{listing(undescribed)}; the two files come from different releases, copy both from one")
    if unassigned:
        raise DatasetError(f"{video_map} describes {len(unassigned)} video(s) that {split_file} assigns to no split: "
                           f"{listing(unassigned)}; the two files come from different releases, copy both from one")

    frames_root = _frames_root(base)
    out: dict[str, list[Sample]] = {split: [] for split in SPLITS}
    bad_length: list[str] = []
    no_gloss: list[str] = []
    skipped: list[str] = []
    missing: list[str] = []
    empty: list[str] = []
    wrong_count: list[str] = []
    for line_no, row in videos:
        name = row["name"]
        where = f"{name} (line {line_no})"
        try:
            length = int(row["length"])
        except ValueError:
            bad_length.append(f"{where}: {row['length']!r}")
            continue
        glosses = tuple(row["gloss"].split())
        if not glosses:
            (skipped if name in KNOWN_UNANNOTATED else no_gloss).append(where)
            continue
        frames_dir = frames_root / name
        n = count_frames(frames_dir)
        if n == 0:
            (empty if frames_dir.is_dir() else missing).append(f"{name}: {frames_dir}")
            continue
        if n != length:
            wrong_count.append(f"{name}: {frames_dir} holds {n}, length says {length}")
            continue
        split = assigned[name][0]
        out[split].append(Sample(
            id=name, split=split, frames_dir=str(frames_dir), signer=_signer(name), num_frames=n,
            glosses=glosses, translation="".join(row[translation_col].split()),
        ))

    if bad_length:
        raise DatasetError(f"{video_map}: {len(bad_length)} video(s) whose 'length' is not a whole number: "
                           f"{listing(bad_length)}; the file is damaged, copy it from the release again")
    if no_gloss:
        raise DatasetError(f"{video_map}: {len(no_gloss)} video(s) with an empty 'gloss' column: {listing(no_gloss)}; "
                           "fix or remove those lines")
    if missing:
        raise DatasetFileMissing(f"{len(missing)} CSL-Daily frame folder(s) missing: {listing(missing)}; "
                                 f"the frames copy is incomplete, copy the release's frames into {frames_root} again")
    if empty:
        raise DatasetFileMissing(f"{len(empty)} CSL-Daily frame folder(s) hold no images ({'/'.join(IMAGE_SUFFIXES)}): "
                                 f"{listing(empty)}; copy the release's frames into {frames_root} again")
    if wrong_count:
        raise DatasetFileMissing(f"{len(wrong_count)} CSL-Daily frame folder(s) hold a different number of images "
                                 f"than {video_map} says: {listing(wrong_count)}; the frames copy is incomplete, "
                                 "copy the release's frames again")
    if skipped:
        log.warning("CSL-Daily: left out %d video(s) the release ships without glosses: %s",
                    len(skipped), listing(skipped))
    empty_splits = [split for split in SPLITS if not out[split]]
    if empty_splits:
        raise DatasetError(f"{split_file} assigns no video to split(s) {', '.join(empty_splits)}; "
                           "every split needs at least one video, copy split_1.txt from the release again")
    return out


def _read_splits(path: Path) -> dict[str, tuple[str, int]]:
    """name -> (split, line number), after checking every split value and that names are unique."""
    rows = read_annotation(path, COLUMNS_SPLIT)
    _check_unique(path, [(line, row["name"]) for line, row in rows])
    bad = [f"{row['name']} (line {line}): {row['split']!r}" for line, row in rows if row["split"] not in SPLITS]
    if bad:
        raise DatasetError(f"{path}: {len(bad)} video(s) with a split other than {'/'.join(SPLITS)}: {listing(bad)}; "
                           "fix those lines or copy split_1.txt from the release again")
    return {row["name"]: (row["split"], line) for line, row in rows}


def _check_unique(path: Path, names: list[tuple[int, str]]) -> None:
    seen: dict[str, int] = {}
    dups = []
    for line, name in names:
        if not name:
            raise DatasetError(f"{path}:{line} has an empty 'name'; the file is damaged, copy it from the release again")
        if name in seen:
            dups.append(f"{name} (lines {seen[name]} and {line})")
        seen.setdefault(name, line)
    if dups:
        raise DatasetError(f"{path} lists {len(dups)} video name(s) twice: {listing(dups)}; remove the duplicates")


def _repair_known_typos(assigned: dict[str, tuple[str, int]], described: set[str]) -> None:
    for listed, actual in KNOWN_SPLIT_TYPOS.items():
        if listed in assigned and listed not in described and actual in described and actual not in assigned:
            assigned[actual] = assigned.pop(listed)
            log.info("CSL-Daily: split_1.txt entry %s read as %s (a known typo of the release)", listed, actual)


def _frames_root(base: Path) -> Path:
    for sub in FRAME_SUBDIRS:
        if (base / sub).is_dir():
            return base / sub
    raise DatasetFileMissing(
        f"CSL-Daily frames not found: neither {base / FRAME_SUBDIRS[0]} nor {base / FRAME_SUBDIRS[1]} exists; "
        "copy the release's frame folders (one folder of JPEG frames per video) there"
    )


def _signer(name: str) -> str:
    match = _NAME.match(name)
    return match.group(1) if match else "unknown"
