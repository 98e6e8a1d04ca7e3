"""The `custom` reader on a folder of real video files written here with OpenCV (clips the project's
renderer draws, encoded as .mp4/.avi/.webm, one left as a frame folder), every error a user can
hit, precomputed keypoints, and the chain prepare -> validate -> extract -> train on it."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from signkd.data.common import DatasetError, DatasetFileMissing, count_frames
from signkd.data.custom import import_keypoints, read_custom
from signkd.data.manifest import SPLITS, read_all, read_vocab
from signkd.data.registry import DATASETS, prepare_from_raw
from signkd.features.keypoints import NUM_JOINTS, extract_keypoints
from signkd.io import load_npz, save_npz
from signkd.params import ParamsError, parse_params
from tests.custom_data import HEADER, make_custom, render_clips, truth_keypoints
from tests.tiny_workspace import ROOT, build


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict:
    return render_clips(tmp_path_factory.mktemp("rendered") / "raw", num_train=4, num_dev=2, num_test=2)


@pytest.fixture(scope="module")
def custom_root(rendered, tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("user") / "custom"
    return root, make_custom(root, rendered)


def _copy(src: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "custom"
    shutil.copytree(src, dest)
    return dest


# --- the reader ---------------------------------------------------------------------------------


def test_reads_video_files_and_frame_folders(custom_root):
    root, videos = custom_root
    splits = read_custom(root)
    assert {s: len(v) for s, v in splits.items()} == {"train": 4, "dev": 2, "test": 2}
    for split, samples in splits.items():
        for s in samples:
            v = videos[s.id]
            assert (s.split, s.glosses, s.translation, s.signer) == (v["split"], tuple(v["glosses"].split()),
                                                                      v["translation"], v["signer"])
            assert Path(s.frames_dir) == v["path"]
            assert s.num_frames == v["n"] == count_frames(s.frames_dir)  # decoded, not the header's guess
    suffixes = {Path(s.frames_dir).suffix for split in splits.values() for s in split}
    assert suffixes == {".mp4", ".avi", ".webm", ""}


def test_one_csv_per_split_reads_the_same(custom_root, rendered, tmp_path):
    root, _ = custom_root
    per_split = tmp_path / "per_split"
    make_custom(per_split, rendered, per_split=True, keypoints_every=0)
    a, b = read_custom(root), read_custom(per_split)
    for split in SPLITS:
        assert [(s.id, s.glosses, s.num_frames) for s in a[split]] == [(s.id, s.glosses, s.num_frames) for s in b[split]]


def test_prepare_writes_manifests_and_vocab(custom_root, tmp_path):
    root, videos = custom_root
    stats = prepare_from_raw("custom", root, tmp_path / "manifest")
    assert "custom" in DATASETS
    manifests = read_all(tmp_path / "manifest")
    assert stats["counts"] == {"train": 4, "dev": 2, "test": 2}
    assert read_vocab(tmp_path / "manifest") == sorted({g for s in manifests["train"] for g in s.glosses})
    assert {s.id: s.num_frames for split in manifests.values() for s in split} == {k: v["n"] for k, v in videos.items()}


def _edit_csv(root: Path, fn) -> None:
    path = root / "annotations.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(fn(lines)) + "\n", encoding="utf-8")


def _swap(lines, row, col, value):
    fields = lines[row].split("|")
    fields[HEADER.index(col)] = value
    return lines[:row] + ["|".join(fields)] + lines[row + 1:]


@pytest.mark.parametrize("name, edit, error, needles", [
    ("missing video", lambda r: _swap_file(r, 2, "videos/nothere.mp4"), DatasetFileMissing,
     ["annotations.csv:3", "nothere.mp4", "not found"]),
    ("empty glosses", lambda r: _edit_csv(r, lambda ls: _swap(ls, 1, "glosses", " ")), DatasetError,
     ["annotations.csv:2", "empty 'glosses'"]),
    ("bad split", lambda r: _edit_csv(r, lambda ls: _swap(ls, 4, "split", "validation")), DatasetError,
     ["annotations.csv:5", "'validation'", "train/dev/test"]),
    ("duplicate id", lambda r: _edit_csv(r, lambda ls: ls + [ls[1]]), DatasetError, ["used twice", "annotations.csv:2"]),
    ("id with a space", lambda r: _rename(r, 1, "my clip.mp4"), DatasetError, ["'my clip'", "add an 'id' column"]),
    ("not a video", lambda r: _rename(r, 1, "notes.txt"), DatasetError, ["notes.txt", "neither a video"]),
    ("corrupt video", lambda r: _corrupt(r, 1), DatasetFileMissing, ["without a readable frame", "annotations.csv:2"]),
    ("no split column", lambda r: _edit_csv(r, lambda ls: [_drop_field(ln, "split") for ln in ls]), DatasetError,
     ["lacks column(s) split"]),
    ("empty test split", lambda r: _edit_csv(r, lambda ls: [ln for ln in ls if "|test|" not in ln]), DatasetError,
     ["no video in split(s) test"]),
    ("both forms", lambda r: (r / "train.csv").write_text("video|glosses\n"), DatasetError,
     ["both annotations.csv and train.csv"]),
    ("no annotations", lambda r: (r / "annotations.csv").unlink(), DatasetFileMissing, ["no annotations", "train.csv"]),
    ("per-split incomplete", lambda r: ((r / "annotations.csv").rename(r / "train.csv")), DatasetFileMissing,
     ["lacks dev.csv, test.csv"]),
])
def test_errors_name_the_file_row_and_fix(custom_root, tmp_path, name, edit, error, needles):
    root = _copy(custom_root[0], tmp_path)
    edit(root)
    with pytest.raises(error) as err:
        read_custom(root)
    for needle in needles:
        assert needle in str(err.value), (name, str(err.value))


def test_a_byte_that_is_not_utf8_names_the_file_and_line(custom_root, tmp_path):
    root = _copy(custom_root[0], tmp_path)
    path = root / "annotations.csv"
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b"|", b"\xe9|", 1)  # a Latin-1 'e acute' in the third video's line
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(DatasetError, match=r"annotations\.csv:4: byte 0xe9 is not UTF-8"):
        read_custom(root)


def test_every_kind_of_problem_is_reported_at_once(custom_root, tmp_path):
    root = _copy(custom_root[0], tmp_path)
    _rename(root, 1, "notes.txt")
    _edit_csv(root, lambda ls: _swap(ls, 2, "glosses", " "))
    _swap_file(root, 4, "videos/nothere.mp4")
    with pytest.raises(DatasetError) as err:
        read_custom(root)
    message = str(err.value)
    assert "\n" not in message and message.startswith("3 kinds of problems")
    for needle in ("annotations.csv:3", "empty 'glosses'", "annotations.csv:5", "nothere.mp4", "notes.txt", "neither a video"):
        assert needle in message, needle


def _drop_field(line: str, col: str) -> str:
    fields = line.split("|")
    del fields[HEADER.index(col)]
    return "|".join(fields)


def _swap_file(root: Path, row: int, rel: str) -> None:
    _edit_csv(root, lambda ls: _swap(ls, row, "video", rel))


def _rename(root: Path, row: int, new_name: str) -> None:
    """Rename line `row`'s video file to `new_name` (same folder) and point the CSV at it."""
    old = root / read_csv_field(root, row, "video")
    old.rename(old.parent / new_name)
    _swap_file(root, row, str(Path(read_csv_field(root, row, "video")).parent / new_name))


def _corrupt(root: Path, row: int) -> None:
    (root / read_csv_field(root, row, "video")).write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")


def read_csv_field(root: Path, row: int, col: str) -> str:
    return (root / "annotations.csv").read_text(encoding="utf-8").splitlines()[row].split("|")[HEADER.index(col)]


def test_params_accept_custom_and_name_a_bad_key():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["data"]["dataset"] = "custom"
    raw["data"]["custom"] = {"annotations": "labels.csv", "keypoints_dir": "kp"}
    assert parse_params(raw).data.custom.keypoints_dir == "kp"
    raw["data"]["custom"]["annotations"] = "../elsewhere/labels.csv"
    with pytest.raises(ParamsError, match=r"data\.custom\.annotations"):
        parse_params(raw)


def test_readers_do_not_import_each_other():
    """One module per dataset: a reader imports the shared helpers, never another reader."""
    readers = {"phoenix", "csl_daily", "custom", "synthetic"}
    for name in readers | {"common"}:
        tree = ast.parse((ROOT / "src/signkd/data" / f"{name}.py").read_text(encoding="utf-8"))
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
        others = {f"signkd.data.{r}" for r in readers - {name}} | {"signkd.data.registry"}
        assert not imported & others, f"{name}.py imports {sorted(imported & others)}"


# --- precomputed keypoints ----------------------------------------------------------------------


def test_precomputed_keypoints_are_kept_by_extraction_and_withdrawn_with_their_file(custom_root, rendered, tmp_path):
    root, videos = custom_root
    samples = [s for split in read_custom(root).values() for s in split]
    cache = tmp_path / "keypoints"
    stats = import_keypoints(samples, root / "keypoints", cache)
    precomputed = sorted(k for k, v in videos.items() if v["precomputed"])
    assert stats == {"keypoints_imported": 4, "keypoints_to_extract": 4, "keypoints_withdrawn": 0}
    assert sorted(p.stem for p in cache.glob("*.npz")) == precomputed
    # the extractor keeps them as finished videos (no MediaPipe run), gap filling applied
    chosen = [s for s in samples if s.id in precomputed]
    report = extract_keypoints(chosen, cache, workers=1, max_gap=4, progress=False)
    assert (report["cached"], report["processed"]) == (4, 0)
    kept = load_npz(cache / f"{precomputed[0]}.npz")
    truth = truth_keypoints(videos[precomputed[0]]["truth"], rendered["pose_names"])
    np.testing.assert_array_equal(kept["mask"], truth["mask"])
    assert "interpolated" in kept and kept["landmarks"].shape == (videos[precomputed[0]]["n"], NUM_JOINTS, 3)
    # the user withdraws one file: its cached copy goes, so MediaPipe will extract that video
    withdrawn = tmp_path / "kp"
    shutil.copytree(root / "keypoints", withdrawn)
    (withdrawn / f"{precomputed[0]}.npz").unlink()
    stats = import_keypoints(samples, withdrawn, cache)
    assert stats["keypoints_withdrawn"] == 1 and not (cache / f"{precomputed[0]}.npz").exists()
    assert import_keypoints(samples, None, cache)["keypoints_withdrawn"] == 3


@pytest.mark.parametrize("change, needle", [
    (lambda a: a | {"landmarks": a["landmarks"][:-1]}, "expected float ["),
    (lambda a: a | {"mask": a["mask"].astype(np.uint8)}, "mask is uint8"),
    (lambda a: {k: v for k, v in a.items() if k != "mask"}, "no array 'mask'"),
    (lambda a: a | {"landmarks": np.where(a["mask"][..., None], np.nan, a["landmarks"]).astype(np.float32)}, "NaN"),
])
def test_precomputed_keypoints_in_another_layout_are_rejected(custom_root, tmp_path, change, needle):
    root, videos = custom_root
    samples = [s for split in read_custom(root).values() for s in split]
    target = next(k for k, v in videos.items() if v["precomputed"])
    kp = tmp_path / "kp"
    shutil.copytree(root / "keypoints", kp)
    save_npz(kp / f"{target}.npz", **change(load_npz(kp / f"{target}.npz")))
    with pytest.raises(DatasetError) as err:
        import_keypoints(samples, kp, tmp_path / "cache")
    assert f"{target}.npz" in str(err.value) and needle in str(err.value)


# --- the chain ----------------------------------------------------------------------------------

CHAIN = ("prepare", "validate", "extract_keypoints", "extract_flow", "validate_features", "train_teacher", "train_student")


def test_default_chain_runs_on_a_folder_of_videos(rendered, tmp_path):
    """prepare -> validate -> extract keypoints/flow -> validate features -> train teacher and
    student, each through the real stage runner, on videos the reader has never seen before."""
    videos = make_custom(tmp_path / "data/raw/custom", rendered)
    build(tmp_path, CHAIN, {
        "data": {"dataset": "custom", "custom": {"annotations": "annotations.csv", "keypoints_dir": "keypoints"}},
        "validate": {"min_detection_rate": 0.3}, "teacher": {"epochs": 2}, "student": {"epochs": 2},
    })
    metrics = {name: json.loads((tmp_path / "reports" / name / "metrics.json").read_text()) for name in CHAIN}
    assert metrics["prepare"]["keypoints_imported"] == 4 and metrics["prepare"]["dataset"] == "custom"
    # precomputed videos are kept, MediaPipe runs on the others (video files and the frame folder)
    assert (metrics["extract_keypoints"]["cached"], metrics["extract_keypoints"]["processed"]) == (4, 4)
    assert metrics["extract_flow"]["processed"] == len(videos) == 8
    manifests = read_all(tmp_path / "data/manifest")
    assert {Path(s.frames_dir).suffix for split in manifests.values() for s in split} == {".mp4", ".avi", ".webm", ""}
    for name in ("train_teacher", "train_student"):
        assert 0 <= metrics[name]["test_wer"] and 0 <= metrics[name]["dev_wer"], name
