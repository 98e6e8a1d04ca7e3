"""Reader for a user's own recordings: a folder of videos plus a `|`-separated CSV of glosses.

So that the whole chain runs on data no public reader knows. The folder (`<raw_dir>/custom`,
`data.dataset: custom`) holds

    annotations.csv            video|glosses|split[|translation][|signer][|id], one line per video
      or train.csv, dev.csv, test.csv   the same columns without `split`, one file per split
    <anything>                 the videos: files (.mp4 .avi .mov .mkv .webm) or folders of frames
                               (.png .jpg .jpeg, in natural name order), where `video` points
    keypoints/<id>.npz         optional precomputed keypoints (data.custom.keypoints_dir)

Every CSV starts with a header naming its columns (any order). `video` is a path relative to the
folder (absolute paths work too); `glosses` is the gloss sequence separated by spaces; `split` is
train / dev / test; `translation` (spoken-language sentence) and `signer` are optional; `id`
defaults to the video's file name without its suffix. Ids name output files and appear in the
scorer's CTM/STM files, so they must be unique and use only letters, digits, `.`, `_` and `-`.

Precomputed keypoints use the layout `extract_keypoints` writes (see `signkd.features.keypoints`):
`landmarks` float32 [T, 73, 3] (x, y in [0, 1] of the image, z relative depth, in the joint order
of `JOINT_NAMES`), `mask` bool [T, 73] (True where the joint was detected) and optionally
`frame_size` int32 [height, width] (read from the video when absent); T is the video's frame
count. `import_keypoints` checks them and places them in the keypoint cache with the video's
content fingerprint, marked as supplied from outside, so `extract_keypoints` keeps them under any
extractor settings (gap filling is still applied) and runs MediaPipe only for videos without one.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from signkd.data.common import DatasetError, DatasetFileMissing, count_frames, listing, read_annotation
from signkd.data.manifest import SPLITS, Sample
from signkd.features.cache import CONTENT_KEY, EXTERNAL_KEY, content_fingerprint
from signkd.features.frames import VIDEO_SUFFIXES, iter_frames
from signkd.features.keypoints import NUM_JOINTS
from signkd.features.parallel import output_path
from signkd.io import load_npz, save_npz

DEFAULT_ANNOTATIONS = "annotations.csv"
REQUIRED = ("video", "glosses")  # optional: translation, signer, id (and split in the single file)
# marks a cache file that came from the user's keypoints: kept under any extractor settings, and
# dropped here when the user's file is removed
IMPORTED_KEY = EXTERNAL_KEY
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_LAYOUT = ("write train.csv, dev.csv and test.csv (header video|glosses[|translation]) or one "
           "{ann} with a split column (header video|glosses|split[|translation])")


def read_custom(root: str | Path, annotations: str = DEFAULT_ANNOTATIONS) -> dict[str, list[Sample]]:
    """Read the folder described in the module docstring into samples per split."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetFileMissing(f"custom dataset folder {root} does not exist; put your videos and CSV there "
                                 f"({_LAYOUT.format(ann=annotations)}) and rerun prepare")
    rows = _annotation_rows(root, annotations)
    out: dict[str, list[Sample]] = {split: [] for split in SPLITS}
    seen: dict[str, str] = {}
    bad_id, dup_id, no_gloss, missing, wrong_kind, empty = [], [], [], [], [], []
    for where, split, row in rows:
        if not row["video"]:
            missing.append(f"{where}: empty 'video'")
            continue
        video = Path(row["video"])
        source = video if video.is_absolute() else root / video
        vid = row.get("id") or video.stem
        if not _ID.match(vid):
            bad_id.append(f"{where}: {vid!r}")
            continue
        if vid in seen:
            dup_id.append(f"{vid} ({seen[vid]} and {where})")
            continue
        seen[vid] = where
        glosses = tuple(row["glosses"].split())
        if not glosses:
            no_gloss.append(where)
        elif not source.exists():
            missing.append(f"{where}: {source}")
        elif source.is_file() and source.suffix.lower() not in VIDEO_SUFFIXES:
            wrong_kind.append(f"{where}: {source}")
        elif (n := count_frames(source)) == 0:
            empty.append(f"{where}: {source}")
        else:
            out[split].append(Sample(
                id=vid, split=split, frames_dir=str(source), signer=row.get("signer") or "unknown",
                num_frames=n, glosses=glosses, translation=row.get("translation", ""),
            ))
    _raise_collected(bad_id, dup_id, no_gloss, missing, wrong_kind, empty)
    empty_splits = [split for split in SPLITS if not out[split]]
    if empty_splits:
        raise DatasetError(f"custom dataset {root} has no video in split(s) {', '.join(empty_splits)}; "
                           "every split needs at least one (train to learn, dev to select, test to report)")
    return out


def _annotation_rows(root: Path, annotations: str) -> list[tuple[str, str, dict[str, str]]]:
    """(file:line, split, row) of every video, from one CSV with a split column or one CSV per split."""
    single, per_split = root / annotations, [root / f"{split}.csv" for split in SPLITS]
    present = [p for p in per_split if p.is_file()]
    if single.is_file() and present:
        raise DatasetError(f"custom dataset {root} has both {single.name} and {', '.join(p.name for p in present)}; "
                           "keep one form: a single file with a split column, or one file per split")
    if single.is_file():
        rows = read_annotation(single, REQUIRED + ("split",))
        bad = [f"{single}:{line}: {row['split']!r}" for line, row in rows if row["split"] not in SPLITS]
        if bad:
            raise DatasetError(f"{len(bad)} video(s) with a split other than {'/'.join(SPLITS)}: {listing(bad)}; "
                               "fix the split column")
        return [(f"{single}:{line}", row["split"], row) for line, row in rows]
    if not present:
        raise DatasetFileMissing(f"custom dataset {root} has no annotations: {_LAYOUT.format(ann=annotations)}")
    absent = [p.name for p in per_split if not p.is_file()]
    if absent:
        raise DatasetFileMissing(f"custom dataset {root} lacks {', '.join(absent)} (found "
                                 f"{', '.join(p.name for p in present)}); {_LAYOUT.format(ann=annotations)}")
    return [(f"{path}:{line}", split, row)
            for split, path in zip(SPLITS, per_split) for line, row in read_annotation(path, REQUIRED)]


def _raise_collected(bad_id, dup_id, no_gloss, missing, wrong_kind, empty) -> None:
    """Every kind of problem at once, each naming its file:line entries (the first few), in one
    message: fixing one kind should not reveal the next only on the following run."""
    problems: list[tuple[type, str]] = []
    if bad_id:
        problems.append((DatasetError, f"{len(bad_id)} video id(s) with characters other than letters, digits, '.', "
                         f"'_', '-': {listing(bad_id)}; rename the videos or add an 'id' column"))
    if dup_id:
        problems.append((DatasetError, f"{len(dup_id)} video id(s) used twice: {listing(dup_id)}; ids name output "
                         "files, rename the videos or add an 'id' column with unique values"))
    if no_gloss:
        problems.append((DatasetError, f"{len(no_gloss)} video(s) with an empty 'glosses' column: {listing(no_gloss)}; "
                         "fix or remove those lines"))
    if missing:
        problems.append((DatasetFileMissing, f"{len(missing)} video(s) not found: {listing(missing)}; 'video' is a "
                         "path relative to the dataset folder (a video file or a folder of frames)"))
    if wrong_kind:
        problems.append((DatasetError, f"{len(wrong_kind)} 'video' path(s) are neither a video "
                         f"({', '.join(VIDEO_SUFFIXES)}) nor a folder of frames: {listing(wrong_kind)}; convert them "
                         "(e.g. ffmpeg -i in -c:v libx264 out.mp4)"))
    if empty:
        problems.append((DatasetFileMissing, f"{len(empty)} video(s) without a readable frame: {listing(empty)}; the "
                         "file is empty, truncated or in a codec this OpenCV cannot decode (re-encode it to H.264 "
                         ".mp4), or the folder holds no .png/.jpg frames"))
    if len(problems) == 1:
        raise problems[0][0](problems[0][1])
    if problems:
        kinds = {cls for cls, _ in problems}
        cls = DatasetFileMissing if kinds == {DatasetFileMissing} else DatasetError
        raise cls(f"{len(problems)} kinds of problems: " + "; ALSO ".join(f"({k}) {msg}" for k, (_, msg) in
                                                                          enumerate(problems, start=1)))


def import_keypoints(samples: list[Sample], keypoints_dir: str | Path | None, cache_dir: str | Path) -> dict:
    """Check the user's `<keypoints_dir>/<id>.npz` and place them in `cache_dir` (the keypoint
    stage's output) as already extracted; see the module docstring. Files imported by an earlier
    run whose source is gone (or `keypoints_dir` None) are removed, so MediaPipe extracts those."""
    cache_dir = Path(cache_dir)
    imported, problems = [], []
    if keypoints_dir is not None:
        keypoints_dir = Path(keypoints_dir)
        if not keypoints_dir.is_dir():
            raise DatasetFileMissing(f"precomputed keypoints folder {keypoints_dir} (data.custom.keypoints_dir) does "
                                     "not exist; create it with one <id>.npz per video, or set keypoints_dir to \"\"")
        for sample in samples:
            src = keypoints_dir / f"{sample.id}.npz"
            if src.is_file():
                try:
                    _place(src, sample, cache_dir)
                    imported.append(sample.id)
                except ValueError as err:
                    problems.append(f"{src}: {err}")
    if problems:
        raise DatasetError(f"{len(problems)} precomputed keypoint file(s) do not match the layout: {listing(problems)}; "
                           f"expected landmarks float [T, {NUM_JOINTS}, 3], mask bool [T, {NUM_JOINTS}] and optionally "
                           "frame_size [height, width], T = the video's frame count (see README, 'Your own data')")
    dropped = _drop_withdrawn(cache_dir, set(imported))
    return {"keypoints_imported": len(imported), "keypoints_to_extract": len(samples) - len(imported),
            "keypoints_withdrawn": dropped}


def _place(src: Path, sample: Sample, cache_dir: Path) -> None:
    """Write the checked arrays with the video's content fingerprint, which the extractor's cache
    checks before keeping a file (signkd.features.cache)."""
    arrays = _checked_keypoints(src, sample)
    content = content_fingerprint(sample.frames_dir)
    if content is None:
        raise ValueError(f"its video {sample.frames_dir} cannot be read")
    save_npz(output_path(cache_dir, sample.id), **arrays,
             **{IMPORTED_KEY: np.asarray(str(src)), CONTENT_KEY: np.asarray(content)})


def _checked_keypoints(src: Path, sample: Sample) -> dict[str, np.ndarray]:
    """The arrays to cache, or ValueError saying what is wrong with the file."""
    try:
        arrays = load_npz(src)
    except Exception as err:  # zip, pickle and format errors all mean: not a readable .npz
        raise ValueError(f"not a readable .npz ({type(err).__name__}: {err})") from None
    for key in ("landmarks", "mask"):
        if key not in arrays:
            raise ValueError(f"no array '{key}' (it has {', '.join(sorted(arrays)) or 'none'})")
    landmarks, mask = arrays["landmarks"], arrays["mask"]
    t = sample.num_frames
    if landmarks.shape != (t, NUM_JOINTS, 3) or not np.issubdtype(landmarks.dtype, np.floating):
        raise ValueError(f"landmarks is {landmarks.dtype} {landmarks.shape}, expected float [{t}, {NUM_JOINTS}, 3]")
    if mask.shape != (t, NUM_JOINTS) or mask.dtype != bool:
        raise ValueError(f"mask is {mask.dtype} {mask.shape}, expected bool [{t}, {NUM_JOINTS}]")
    if not np.isfinite(landmarks[mask]).all():
        raise ValueError("landmarks of detected joints hold NaN or inf; mark those joints undetected in mask")
    if "frame_size" in arrays:
        size = np.asarray(arrays["frame_size"])
        if size.shape != (2,) or (size <= 0).any():
            raise ValueError(f"frame_size is {size.tolist()}, expected [height, width]")
    else:
        size = np.asarray(next(iter_frames(sample.frames_dir)).shape[:2])
    clean = np.where(mask[..., None], landmarks, 0).astype(np.float32)  # undetected joints are zeros
    return {"landmarks": clean, "mask": mask, "frame_size": size.astype(np.int32)}


def _drop_withdrawn(cache_dir: Path, current: set[str]) -> int:
    """Delete cache files imported earlier whose source file is gone, so MediaPipe extracts them."""
    dropped = 0
    for path in cache_dir.glob("*.npz") if cache_dir.is_dir() else ():
        if path.stem in current:
            continue
        try:
            with np.load(path, allow_pickle=False) as data:
                imported = IMPORTED_KEY in data.files
        except Exception:  # unreadable: the keypoint stage recomputes it anyway
            continue
        if imported:
            path.unlink(missing_ok=True)
            dropped += 1
    return dropped

