"""The one on-disk form every dataset is turned into: a CSV manifest per split plus a vocabulary.

Readers of Phoenix-2014, Phoenix-2014T, CSL-Daily and the synthetic corpus all produce
`Sample`s; everything downstream (validation, extraction, training) reads only manifests.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from signkd.errors import InputError
from signkd.io import NotUtf8, atomic_path, decode_utf8

SPLITS = ("train", "dev", "test")
COLUMNS = ("id", "split", "frames_dir", "signer", "num_frames", "glosses", "translation")


class ManifestError(InputError, ValueError):
    """A manifest cannot be read; the message names the file (and row) and the fix."""


REGENERATE = "regenerate the manifests with `dvc repro prepare`"


@dataclass(frozen=True)
class Sample:
    """One signed sentence: a folder of frames and its gloss sequence."""

    id: str
    split: str
    frames_dir: str  # folder of frame images, relative to the repository root (or absolute)
    signer: str
    num_frames: int
    glosses: tuple[str, ...]
    translation: str = ""
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    def to_row(self) -> dict[str, str]:
        return {
            "id": self.id,
            "split": self.split,
            "frames_dir": self.frames_dir,
            "signer": self.signer,
            "num_frames": str(self.num_frames),
            "glosses": " ".join(self.glosses),
            "translation": self.translation,
        }

    @classmethod
    def from_row(cls, row: dict[str, str]) -> "Sample":
        return cls(
            id=row["id"],
            split=row["split"],
            frames_dir=row["frames_dir"],
            signer=row["signer"],
            num_frames=int(row["num_frames"]),
            glosses=tuple(row["glosses"].split()),
            translation=row.get("translation", ""),
        )


def manifest_path(manifest_dir: str | os.PathLike, split: str) -> Path:
    return Path(manifest_dir) / f"{split}.csv"


def write_manifest(manifest_dir: str | os.PathLike, split: str, samples: list[Sample]) -> Path:
    """Write one split's manifest atomically."""
    path = manifest_path(manifest_dir, split)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, delimiter="|", lineterminator="\n")
    writer.writeheader()
    for s in samples:
        writer.writerow(s.to_row())
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
    return path


def read_manifest(manifest_dir: str | os.PathLike, split: str) -> list[Sample]:
    path = manifest_path(manifest_dir, split)
    if not path.is_file():
        raise FileNotFoundError(f"manifest {path} is missing: run the `prepare` stage first (dvc repro prepare)")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise ManifestError(f"manifest {path} line {line}: byte 0x{raw[err.start]:02x} is not UTF-8 (the file "
                            f"was saved in another encoding); re-save it as UTF-8 or {REGENERATE}") from None
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="|")
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise ManifestError(f"manifest {path} lacks column(s) {', '.join(missing)} (its header must be "
                            f"{'|'.join(COLUMNS)}); {REGENERATE}")
    return [_sample(row, path, reader.line_num) for row in reader]


def _sample(row: dict, path: Path, line: int) -> Sample:
    """One row as a Sample, or a ManifestError naming the file, line and field."""
    if None in row.values() or None in row:
        fields = len([v for v in row.values() if v is not None]) + len(row.get(None) or ())
        raise ManifestError(f"manifest {path} line {line}: {fields} fields where the header has {len(COLUMNS)} "
                            f"(a missing or extra '|'); correct that line or {REGENERATE}")
    try:
        frames = int(row["num_frames"])
    except ValueError:
        raise ManifestError(f"manifest {path} line {line} (id {row['id']!r}): num_frames {row['num_frames']!r} "
                            f"is not a whole number; correct that line or {REGENERATE}") from None
    if frames < 0:
        raise ManifestError(f"manifest {path} line {line} (id {row['id']!r}): num_frames {frames} is negative; "
                            f"correct that line or {REGENERATE}")
    return Sample.from_row(row | {"num_frames": str(frames)})


def read_all(manifest_dir: str | os.PathLike) -> dict[str, list[Sample]]:
    return {split: read_manifest(manifest_dir, split) for split in SPLITS}


def vocab_path(manifest_dir: str | os.PathLike) -> Path:
    return Path(manifest_dir) / "vocab.txt"


def write_vocab(manifest_dir: str | os.PathLike, glosses: list[str]) -> Path:
    """One gloss per line; line order defines class ids (blank is id 0, glosses start at 1)."""
    path = vocab_path(manifest_dir)
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(glosses) + "\n", encoding="utf-8")
    return path


def read_vocab(manifest_dir: str | os.PathLike) -> list[str]:
    path = vocab_path(manifest_dir)
    if not path.is_file():
        raise FileNotFoundError(f"vocabulary {path} is missing: run the `prepare` stage first")
    try:
        text = decode_utf8(path.read_bytes())
    except NotUtf8 as err:
        raise ManifestError(f"vocabulary {path} line {err.line}: byte 0x{err.byte:02x} is not UTF-8; re-save it "
                            "as UTF-8 or regenerate it with `dvc repro prepare`") from None
    return [line.strip() for line in text.splitlines() if line.strip()]
