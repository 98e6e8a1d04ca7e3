"""The one on-disk form every dataset is turned into: a CSV manifest per split plus a vocabulary.

Readers of Phoenix-2014, Phoenix-2014T, CSL-Daily and the synthetic corpus all produce
`Sample`s; everything downstream (validation, extraction, training) reads only manifests.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from signkd.io import atomic_path

SPLITS = ("train", "dev", "test")
COLUMNS = ("id", "split", "frames_dir", "signer", "num_frames", "glosses", "translation")


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


def manifest_path(manifest_dir: str | Path, split: str) -> Path:
    return Path(manifest_dir) / f"{split}.csv"


def write_manifest(manifest_dir: str | Path, split: str, samples: list[Sample]) -> Path:
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


def read_manifest(manifest_dir: str | Path, split: str) -> list[Sample]:
    path = manifest_path(manifest_dir, split)
    if not path.is_file():
        raise FileNotFoundError(f"manifest {path} is missing: run the `prepare` stage first (dvc repro prepare)")
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="|")
        missing = set(COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"manifest {path} lacks columns {sorted(missing)}; regenerate it with `dvc repro prepare`")
        return [Sample.from_row(row) for row in reader]


def read_all(manifest_dir: str | Path) -> dict[str, list[Sample]]:
    return {split: read_manifest(manifest_dir, split) for split in SPLITS}


def vocab_path(manifest_dir: str | Path) -> Path:
    return Path(manifest_dir) / "vocab.txt"


def write_vocab(manifest_dir: str | Path, glosses: list[str]) -> Path:
    """One gloss per line; line order defines class ids (blank is id 0, glosses start at 1)."""
    path = vocab_path(manifest_dir)
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(glosses) + "\n", encoding="utf-8")
    return path


def read_vocab(manifest_dir: str | Path) -> list[str]:
    path = vocab_path(manifest_dir)
    if not path.is_file():
        raise FileNotFoundError(f"vocabulary {path} is missing: run the `prepare` stage first")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
