"""Phoenix readers on tiny trees in the official layout, and every error a user can hit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from signkd.data.common import DatasetError, DatasetFileMissing, count_frames
from signkd.data.manifest import read_all, read_vocab
from signkd.data.phoenix import read_phoenix2014, read_phoenix2014t
from signkd.data.registry import prepare_from_raw
from tests.fixtures_phoenix import FRAMES, MANUAL, VIDEOS, make_phoenix2014, make_phoenix2014t


def _check_samples(splits, base: Path, *, translations: bool):
    assert {k: len(v) for k, v in splits.items()} == {k: len(v) for k, v in VIDEOS.items()}
    for split, rows in VIDEOS.items():
        for sample, (vid, signer, orth, text, n) in zip(splits[split], rows):
            assert (sample.id, sample.split, sample.signer, sample.num_frames) == (vid, split, signer, n)
            assert sample.glosses == tuple(orth.split())
            assert sample.translation == (text if translations else "")
            assert Path(sample.frames_dir).is_relative_to(base / FRAMES / split / vid)
            assert count_frames(sample.frames_dir) == n


@pytest.mark.parametrize("in_subdir", [False, True])
def test_read_2014t_from_parent_or_itself(tmp_path, in_subdir):
    base = make_phoenix2014t(tmp_path / "release", frames_in_subdir=in_subdir)
    _check_samples(read_phoenix2014t(tmp_path), base, translations=True)  # two levels above
    _check_samples(read_phoenix2014t(base), base, translations=True)


def test_read_2014t_keeps_relative_root_relative(tmp_path, monkeypatch):
    make_phoenix2014t(tmp_path)
    monkeypatch.chdir(tmp_path)
    sample = read_phoenix2014t(Path("."))["dev"][0]
    assert not Path(sample.frames_dir).is_absolute()
    assert sample.frames_dir == str(Path("PHOENIX-2014-T") / FRAMES / "dev" / sample.id)


def test_read_2014(tmp_path):
    base = make_phoenix2014(tmp_path)
    _check_samples(read_phoenix2014(tmp_path), base, translations=False)


def test_prepare_from_raw_writes_manifests_and_train_vocab(tmp_path):
    make_phoenix2014t(tmp_path / "raw")
    stats = prepare_from_raw("synthetic", tmp_path / "raw", tmp_path / "manifest")
    assert read_vocab(tmp_path / "manifest") == ["MORGEN", "NORD", "REGEN", "SONNE", "SUED"]
    manifests = read_all(tmp_path / "manifest")
    assert [s.id for s in manifests["train"]] == [v[0] for v in VIDEOS["train"]]
    assert stats["counts"] == {"train": 3, "dev": 1, "test": 1}
    assert stats["vocab_size"] == 5
    assert stats["oov"] == {"dev": {"tokens": 1, "types": ["WIND"]}, "test": {"tokens": 0, "types": []}}
    assert stats["frames"]["train"] == {"min": 3, "max": 10, "total": 18}


def test_prepare_from_raw_phoenix2014_and_unknown_dataset(tmp_path):
    make_phoenix2014(tmp_path / "raw")
    assert prepare_from_raw("phoenix2014", tmp_path / "raw", tmp_path / "m")["counts"]["test"] == 1
    with pytest.raises(DatasetError, match="unknown dataset 'csl'"):
        prepare_from_raw("csl", tmp_path / "raw", tmp_path / "m")


def test_missing_root_and_missing_annotation_file(tmp_path):
    with pytest.raises(DatasetFileMissing, match="does not exist"):
        read_phoenix2014t(tmp_path / "nowhere")
    with pytest.raises(DatasetFileMissing, match=r"PHOENIX-2014-T\.train\.corpus\.csv is missing"):
        read_phoenix2014t(tmp_path)
    base = make_phoenix2014t(tmp_path)
    (base / MANUAL / "PHOENIX-2014-T.dev.corpus.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"PHOENIX-2014-T\.dev\.corpus\.csv is missing"):
        read_phoenix2014t(tmp_path)


def test_missing_column(tmp_path):
    base = make_phoenix2014(tmp_path)
    ann = base / MANUAL / "dev.corpus.csv"
    ann.write_text(ann.read_text().replace("annotation", "gloss", 1))
    with pytest.raises(DatasetError, match=r"dev\.corpus\.csv lacks column\(s\) annotation"):
        read_phoenix2014(base)


def test_empty_and_missing_frame_folders_name_the_video(tmp_path):
    base = make_phoenix2014t(tmp_path)
    vid = VIDEOS["train"][1][0]
    for png in (base / FRAMES / "train" / vid).iterdir():
        png.unlink()
    with pytest.raises(DatasetFileMissing, match=f"hold no images.*{vid}: .*{vid}"):
        read_phoenix2014t(base)
    shutil.rmtree(base / FRAMES / "train" / vid)
    with pytest.raises(DatasetFileMissing, match=f"1 frame folder\\(s\\) missing: {vid}: "):
        read_phoenix2014t(base)


def test_empty_annotation_and_empty_glosses(tmp_path):
    base = make_phoenix2014t(tmp_path)
    ann = base / MANUAL / "PHOENIX-2014-T.test.corpus.csv"
    header = ann.read_text().splitlines()[0]
    ann.write_text(header + "\n")
    with pytest.raises(DatasetError, match="has a header but no videos"):
        read_phoenix2014t(base)
    ann.write_text("")
    with pytest.raises(DatasetError, match="is empty"):
        read_phoenix2014t(base)
    vid = VIDEOS["test"][0][0]
    ann.write_text(f"{header}\n{vid}|{vid}/1/*.png|-1|-1|Signer01||text\n")
    with pytest.raises(DatasetError, match=f"empty 'orth' column: {vid} \\(line 2\\)"):
        read_phoenix2014t(base)
