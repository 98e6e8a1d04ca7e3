"""CSL-Daily reader on a tiny tree in the official release layout, and every error a user can hit."""

from __future__ import annotations

import functools
import io
import logging
import shutil
from pathlib import Path

import pytest
from PIL import Image

from signkd.data.common import DatasetError, DatasetFileMissing, count_frames
from signkd.data.csl_daily import FRAME_SUBDIRS, SPLIT_FILE, VIDEO_MAP, read_csl_daily
from signkd.data.manifest import read_all, read_vocab
from signkd.data.registry import prepare_from_raw

FRAMES = FRAME_SUBDIRS[0]
HEADER = "index|name|length|gloss|char|word|postag"

# split -> [(name, gloss, char column, num_frames)]
VIDEOS = {
    "train": [
        ("S000000_P0000_T00", "我 喜欢 吃 面包", "我 喜 欢 吃 面 包 。", 5),
        ("S000001_P0004_T00", "明天 下雨", "明 天 下 雨 。", 3),
        ("S000002_P0008_T00", "你 好", "你 好 。", 7),
    ],
    "dev": [("S000003_P0001_T00", "今天 天气 好", "今 天 天 气 好 。", 4)],
    "test": [("S000004_P0002_T00", "我 明天 吃 面包", "我 明 天 吃 面 包 。", 6)],
}


@functools.cache
def jpg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (90, 140, 200)).save(buf, format="JPEG")
    return buf.getvalue()


def make_csl_daily(root: Path, videos: dict = VIDEOS, *, known_typo: bool = False) -> Path:
    """Write `root/CSL-Daily/...` in the release layout and return that folder.

    `known_typo` adds the release's inconsistency: a video_map line for S000007_P0003_T00 with no
    gloss and a split_1.txt line naming S000005_P0004_T00 instead.
    """
    base = root / "CSL-Daily"
    (base / VIDEO_MAP).parent.mkdir(parents=True, exist_ok=True)
    vmap, splits = [HEADER], ["name|split"]
    rows = [(split, *row) for split, split_rows in videos.items() for row in split_rows]
    for index, (split, name, gloss, chars, n) in enumerate(rows):
        vmap.append(f"{index:06d}|{name}|{n}|{gloss}|{chars}|{gloss}|n v")
        splits.append(f"{name}|{split}")
        folder = base / FRAMES / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (folder / f"{i:06d}.jpg").write_bytes(jpg_bytes())
    if known_typo:
        vmap.append(f"{len(rows):06d}|S000007_P0003_T00|2||||")
        splits.append("S000005_P0004_T00|train")
        folder = base / FRAMES / "S000007_P0003_T00"
        folder.mkdir(parents=True)
        for i in range(2):
            (folder / f"{i:06d}.jpg").write_bytes(jpg_bytes())
    (base / VIDEO_MAP).write_text("\n".join(vmap) + "\n", encoding="utf-8")
    (base / SPLIT_FILE).write_text("\n".join(splits) + "\n", encoding="utf-8")
    return base


def _replace_line(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_read_from_release_folder_or_above(tmp_path):
    base = make_csl_daily(tmp_path / "licensed")
    for root in (base, tmp_path):
        splits = read_csl_daily(root)
        assert {k: len(v) for k, v in splits.items()} == {"train": 3, "dev": 1, "test": 1}
        for split, rows in VIDEOS.items():
            for sample, (name, gloss, chars, n) in zip(splits[split], rows):
                assert (sample.id, sample.split, sample.num_frames) == (name, split, n)
                assert sample.glosses == tuple(gloss.split())
                assert sample.translation == chars.replace(" ", "")
                assert sample.signer == name.split("_")[1]
                assert Path(sample.frames_dir) == base / FRAMES / name
                assert count_frames(sample.frames_dir) == n
    assert splits["train"][0].translation == "我喜欢吃面包。"


def test_alternative_frames_folder_and_word_column(tmp_path):
    base = make_csl_daily(tmp_path)
    (base / FRAME_SUBDIRS[1]).parent.mkdir(parents=True)
    shutil.move(base / FRAMES, base / FRAME_SUBDIRS[1])
    shutil.rmtree(base / FRAMES.parent)
    vmap = base / VIDEO_MAP
    lines = vmap.read_text(encoding="utf-8").splitlines()
    # drop the char column: the word column is the translation then
    vmap.write_text("\n".join("|".join(f for i, f in enumerate(line.split("|")) if i != 4) for line in lines) + "\n",
                    encoding="utf-8")
    sample = read_csl_daily(base)["dev"][0]
    assert Path(sample.frames_dir) == base / FRAME_SUBDIRS[1] / sample.id
    assert sample.translation == "今天天气好"


def test_known_release_typo_is_repaired_and_unannotated_video_left_out(tmp_path, caplog):
    make_csl_daily(tmp_path, known_typo=True)
    with caplog.at_level(logging.WARNING, logger="signkd.data.csl_daily"):
        splits = read_csl_daily(tmp_path)
    assert [s.id for s in splits["train"]] == [v[0] for v in VIDEOS["train"]]
    assert "S000007_P0003_T00" in caplog.text and "without glosses" in caplog.text


def test_prepare_from_raw_csl_daily(tmp_path):
    make_csl_daily(tmp_path / "raw")
    stats = prepare_from_raw("csl_daily", tmp_path / "raw", tmp_path / "manifest")
    assert stats["counts"] == {"train": 3, "dev": 1, "test": 1}
    assert read_vocab(tmp_path / "manifest") == sorted({g for _, gl, _, _ in VIDEOS["train"] for g in gl.split()})
    assert stats["oov"]["dev"] == {"tokens": 2, "types": ["今天", "天气"]}  # 好 is in train
    manifests = read_all(tmp_path / "manifest")
    assert manifests["test"][0].translation == "我明天吃面包。"


def test_missing_root_and_annotation_files(tmp_path):
    with pytest.raises(DatasetFileMissing, match="does not exist"):
        read_csl_daily(tmp_path / "nowhere")
    with pytest.raises(DatasetFileMissing, match=r"video_map\.txt is missing .*signed licence agreement"):
        read_csl_daily(tmp_path)
    base = make_csl_daily(tmp_path)
    (base / SPLIT_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=r"split_1\.txt is missing"):
        read_csl_daily(tmp_path)


def test_missing_column_and_bad_split(tmp_path):
    base = make_csl_daily(tmp_path)
    _replace_line(base / VIDEO_MAP, HEADER, HEADER.replace("gloss", "glosses"))
    with pytest.raises(DatasetError, match=r"video_map\.txt lacks column\(s\) gloss"):
        read_csl_daily(base)
    base = make_csl_daily(tmp_path / "again")
    _replace_line(base / SPLIT_FILE, "S000003_P0001_T00|dev", "S000003_P0001_T00|val")
    with pytest.raises(DatasetError, match=r"split other than train/dev/test: S000003_P0001_T00 \(line 5\): 'val'"):
        read_csl_daily(base)


def test_files_disagree(tmp_path):
    base = make_csl_daily(tmp_path)
    _replace_line(base / SPLIT_FILE, "S000004_P0002_T00|test", "S000009_P0002_T00|test")
    with pytest.raises(DatasetError, match=r"names 1 video\(s\) that .*video_map\.txt does not describe: S000009_P0002_T00"):
        read_csl_daily(base)
    _replace_line(base / SPLIT_FILE, "S000009_P0002_T00|test\n", "")
    with pytest.raises(DatasetError, match=r"assigns to no split: S000004_P0002_T00 \(line 6\)"):
        read_csl_daily(base)


def test_duplicate_names_empty_gloss_and_empty_split(tmp_path):
    base = make_csl_daily(tmp_path)
    text = (base / SPLIT_FILE).read_text(encoding="utf-8")
    (base / SPLIT_FILE).write_text(text + "S000000_P0000_T00|dev\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"twice: S000000_P0000_T00 \(lines 2 and 7\)"):
        read_csl_daily(base)
    (base / SPLIT_FILE).write_text(text, encoding="utf-8")

    _replace_line(base / VIDEO_MAP, "|你 好|你 好 。|你 好|", "||你 好 。||")
    with pytest.raises(DatasetError, match=r"empty 'gloss' column: S000002_P0008_T00 \(line 4\)"):
        read_csl_daily(base)
    _replace_line(base / VIDEO_MAP, "||你 好 。||", "|你 好|你 好 。|你 好|")

    _replace_line(base / SPLIT_FILE, "S000003_P0001_T00|dev", "S000003_P0001_T00|train")
    with pytest.raises(DatasetError, match="no video to split.s. dev"):
        read_csl_daily(base)


def test_missing_empty_and_incomplete_frame_folders(tmp_path):
    base = make_csl_daily(tmp_path)
    name = VIDEOS["train"][1][0]
    folder = base / FRAMES / name
    next(folder.iterdir()).unlink()
    with pytest.raises(DatasetFileMissing, match=f"different number of images .*{name}: .* holds 2, length says 3"):
        read_csl_daily(base)
    for jpg in folder.iterdir():
        jpg.unlink()
    with pytest.raises(DatasetFileMissing, match=f"hold no images .*{name}: "):
        read_csl_daily(base)
    folder.rmdir()
    with pytest.raises(DatasetFileMissing, match=f"1 CSL-Daily frame folder.s. missing: {name}: "):
        read_csl_daily(base)
    shutil.rmtree(base / FRAMES.parent)
    with pytest.raises(DatasetFileMissing, match="CSL-Daily frames not found"):
        read_csl_daily(base)


def test_bad_length(tmp_path):
    base = make_csl_daily(tmp_path)
    _replace_line(base / VIDEO_MAP, "|S000002_P0008_T00|7|", "|S000002_P0008_T00|seven|")
    with pytest.raises(DatasetError, match=r"'length' is not a whole number: S000002_P0008_T00 \(line 4\): 'seven'"):
        read_csl_daily(base)
