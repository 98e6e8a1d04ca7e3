"""Great Expectations suite over manifests: a good corpus passes, each kind of breakage is named."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

from signkd.data.manifest import read_manifest, write_manifest, write_vocab
from signkd.data.registry import prepare_from_raw
from signkd.validation import DataValidationError, validate_manifests
from tests.fixtures_phoenix import VIDEOS, make_phoenix2014t

TRAIN_IDS = [v[0] for v in VIDEOS["train"]]


@pytest.fixture
def manifests(tmp_path):
    make_phoenix2014t(tmp_path / "raw")
    prepare_from_raw("phoenix2014t", tmp_path / "raw", tmp_path / "manifest")
    return tmp_path / "manifest"


def _edit(manifest_dir, split, **changes_by_id):
    samples = [dataclasses.replace(s, **changes_by_id.get(s.id, {})) for s in read_manifest(manifest_dir, split)]
    write_manifest(manifest_dir, split, samples)


def _fails(manifests, tmp_path, min_frames=3, data_docs=False) -> str:
    with pytest.raises(DataValidationError) as err:
        validate_manifests(manifests, min_frames=min_frames, report_dir=tmp_path / "report", data_docs=data_docs)
    return str(err.value)


def test_good_manifests_pass_and_write_reports(manifests, tmp_path):
    summary = validate_manifests(manifests, min_frames=3, report_dir=tmp_path / "report")
    assert summary["success"] and summary["num_failed"] == 0
    assert summary["counts"] == {"train": 3, "dev": 1, "test": 1}
    assert json.loads((tmp_path / "report" / "validation.json").read_text())["success"] is True
    assert (tmp_path / "report" / "data_docs" / "manifests" / "index.html").is_file()


def test_duplicate_id_across_splits(manifests, tmp_path):
    dev_id = VIDEOS["dev"][0][0]
    _edit(manifests, "dev", **{dev_id: {"id": TRAIN_IDS[0]}})
    msg = _fails(manifests, tmp_path, data_docs=True)
    assert "expect_column_values_to_be_unique on column 'id': 2 row(s)" in msg
    assert f"id={TRAIN_IDS[0]} split=train" in msg and f"id={TRAIN_IDS[0]} split=dev" in msg
    assert "splits must be disjoint" in msg
    report = json.loads((tmp_path / "report" / "validation.json").read_text())
    assert report["success"] is False and report["num_failed"] == 1
    assert (tmp_path / "report" / "data_docs" / "manifests" / "index.html").is_file()  # docs are there to inspect


def test_missing_frame_folder(manifests, tmp_path):
    frames_dir = read_manifest(manifests, "train")[1].frames_dir
    shutil.rmtree(frames_dir)
    msg = _fails(manifests, tmp_path)
    assert "on column 'frames_dir_exists': 1 row(s)" in msg
    assert f"id={TRAIN_IDS[1]} split=train num_frames=3 frames_dir={frames_dir}" in msg


def test_empty_glosses_and_stale_vocab(manifests, tmp_path):
    _edit(manifests, "test", **{VIDEOS["test"][0][0]: {"glosses": ()}})
    write_vocab(manifests, ["MORGEN", "NORD", "REGEN"])
    msg = _fails(manifests, tmp_path)
    assert f"expect_column_values_to_not_be_null on column 'glosses': 1 row(s)\n    id={VIDEOS['test'][0][0]}" in msg
    assert "on column 'glosses_in_vocab': 2 row(s)" in msg  # the two train videos signing SONNE / SUED


def test_too_few_frames_and_stale_frame_count(manifests, tmp_path):
    _edit(manifests, "train", **{TRAIN_IDS[2]: {"num_frames": 9}})
    msg = _fails(manifests, tmp_path, min_frames=4)
    assert f"expect_column_values_to_be_between on column 'num_frames': 1 row(s)\n    id={TRAIN_IDS[1]}" in msg
    assert "validate.min_frames=4" in msg
    assert f"on column 'num_frames_matches_disk': 1 row(s)\n    id={TRAIN_IDS[2]}" in msg


def test_empty_split(manifests, tmp_path):
    write_manifest(manifests, "test", [])
    msg = _fails(manifests, tmp_path)
    assert "expect_column_distinct_values_to_contain_set on column 'split': missing test" in msg
