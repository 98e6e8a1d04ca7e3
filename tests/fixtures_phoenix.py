"""Tiny Phoenix-2014 / Phoenix-2014T trees in the official layout, for reader and download tests."""

from __future__ import annotations

import functools
import io
from pathlib import Path

from PIL import Image

FRAMES = Path("features") / "fullFrame-210x260px"
MANUAL = Path("annotations") / "manual"

# split -> [(id, signer, glosses, translation, num_frames)]
VIDEOS = {
    "train": [
        ("01April_2010_Thursday_heute-6694", "Signer04", "REGEN NORD MORGEN", "morgen regnet es im norden", 5),
        ("02April_2010_Friday_tagesschau-2010", "Signer01", "SONNE SUED", "im sueden scheint die sonne", 3),
        ("03April_2010_Saturday_heute-1", "Signer08", "MORGEN SONNE", "morgen sonne", 10),
    ],
    "dev": [("04April_2010_Sunday_heute-3", "Signer04", "REGEN WIND", "regen und wind", 4)],
    "test": [("05April_2010_Monday_heute-7", "Signer01", "SUED MORGEN", "morgen im sueden", 6)],
}


@functools.cache
def png_bytes() -> bytes:
    """One 4x4 PNG, encoded once and written as every frame (speed; content does not matter here)."""
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 120, 60)).save(buf, format="PNG")
    return buf.getvalue()


def write_frames(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, n + 1):
        (folder / f"images{i:04d}.png").write_bytes(png_bytes())


def make_phoenix2014t(root: Path, videos: dict = VIDEOS, *, frames_in_subdir: bool = False) -> Path:
    """Write `root/PHOENIX-2014-T/...` and return that folder (frames in `<name>/` or `<name>/1/`)."""
    base = root / "PHOENIX-2014-T"
    (base / MANUAL).mkdir(parents=True, exist_ok=True)
    for split, rows in videos.items():
        lines = ["name|video|start|end|speaker|orth|translation"]
        for vid, signer, orth, text, n in rows:
            lines.append(f"{vid}|{vid}/1/*.png|-1|-1|{signer}|{orth}|{text}")
            folder = base / FRAMES / split / vid
            write_frames(folder / "1" if frames_in_subdir else folder, n)
        (base / MANUAL / f"PHOENIX-2014-T.{split}.corpus.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return base


def make_phoenix2014(root: Path, videos: dict = VIDEOS) -> Path:
    """Write `root/phoenix-2014-multisigner/...` and return that folder."""
    base = root / "phoenix-2014-multisigner"
    (base / MANUAL).mkdir(parents=True, exist_ok=True)
    for split, rows in videos.items():
        lines = ["id|folder|signer|annotation"]
        for vid, signer, orth, _text, n in rows:
            lines.append(f"{vid}|{vid}/1/*.png|{signer}|{orth}")
            write_frames(base / FRAMES / split / vid / "1", n)
        (base / MANUAL / f"{split}.corpus.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return base
