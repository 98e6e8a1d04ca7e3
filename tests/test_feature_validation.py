"""Great Expectations suites over extracted keypoints and flow: good features pass, each breakage is named."""

from __future__ import annotations

import json

import numpy as np
import pytest

from signkd.data.registry import prepare_from_raw
from signkd.features.keypoints import LEFT_HAND, NUM_JOINTS, RIGHT_HAND
from signkd.io import save_npz
from signkd.validation import DataValidationError, validate_flow, validate_keypoints
from tests.fixtures_phoenix import VIDEOS, make_phoenix2014t

# id -> num_frames, in manifest order
FRAMES = {vid: n for split in ("train", "dev", "test") for vid, *_, n in VIDEOS[split]}
IDS = list(FRAMES)
FLOW_HW = (8, 6)


def keypoints(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    landmarks = rng.uniform(0.1, 0.9, (n, NUM_JOINTS, 3)).astype(np.float32)
    mask = np.ones((n, NUM_JOINTS), bool)
    mask[::2, RIGHT_HAND] = False  # the left hand alone still counts as a hand detection
    return {"landmarks": landmarks, "mask": mask, "frame_size": np.array([260, 210], np.int32)}


def flow(n: int, scale: float = 0.05, hw: tuple[int, int] = FLOW_HW, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"flow": rng.integers(-127, 128, (n, 2, *hw)).astype(np.int8),
            "scale": np.asarray(scale, np.float32), "method": np.asarray("dis")}


@pytest.fixture
def corpus(tmp_path):
    """Manifests of the tiny Phoenix fixture, plus good keypoint and flow files for every video."""
    make_phoenix2014t(tmp_path / "raw")
    prepare_from_raw("phoenix2014t", tmp_path / "raw", tmp_path / "manifest")
    for i, (vid, n) in enumerate(FRAMES.items()):
        save_npz(tmp_path / "keypoints" / f"{vid}.npz", **keypoints(n, seed=i))
        save_npz(tmp_path / "flow" / f"{vid}.npz", **flow(n, seed=i))
    return tmp_path


def _keypoints_fail(root, min_detection_rate=0.5) -> str:
    with pytest.raises(DataValidationError) as err:
        validate_keypoints(root / "manifest", root / "keypoints", min_detection_rate=min_detection_rate,
                           report_dir=root / "report", data_docs=False)
    return str(err.value)


def _flow_fail(root, max_abs_flow=20.0, **kwargs) -> str:
    with pytest.raises(DataValidationError) as err:
        validate_flow(root / "manifest", root / "flow", max_abs_flow=max_abs_flow, report_dir=root / "report",
                      data_docs=False, **kwargs)
    return str(err.value)


def _path(root, kind: str, vid: str) -> str:
    return str(root / kind / f"{vid}.npz")


def test_good_features_pass_and_write_reports(corpus):
    summary = validate_keypoints(corpus / "manifest", corpus / "keypoints", min_detection_rate=0.9,
                                 report_dir=corpus / "report")
    assert summary["success"] and summary["num_failed"] == 0 and summary["num_videos"] == 5
    assert summary["mean_hand_detection_rate"] == 1.0 and summary["mean_pose_detection_rate"] == 1.0
    report = json.loads((corpus / "report" / "keypoints.json").read_text())
    assert report["success"] is True and report["suite"] == "keypoints"
    assert (corpus / "report" / "data_docs" / "keypoints" / "index.html").is_file()

    summary = validate_flow(corpus / "manifest", corpus / "flow", max_abs_flow=20.0, report_dir=corpus / "report",
                            height=FLOW_HW[0], width=FLOW_HW[1])
    assert summary["success"] and summary["flow_size"] == "8x6" and summary["methods"] == ["dis"]
    assert summary["observed_max_abs_flow"] == pytest.approx(127 * 0.05, rel=1e-4)
    assert json.loads((corpus / "report" / "flow.json").read_text())["success"] is True
    assert (corpus / "report" / "data_docs" / "flow" / "index.html").is_file()
    assert (corpus / "report" / "data_docs" / "keypoints" / "index.html").is_file()  # one suite keeps the other's docs


def test_nan_landmarks_reported_once(corpus):
    vid = IDS[1]
    arrays = keypoints(FRAMES[vid])
    arrays["landmarks"][1, 3, 0] = np.nan
    save_npz(corpus / "keypoints" / f"{vid}.npz", **arrays)
    msg = _keypoints_fail(corpus)
    assert "1 of 6 expectations of the 'keypoints' suite" in msg
    assert (f"expect_column_values_to_be_in_set on column 'values_finite': 1 row(s)\n"
            f"    id={vid} split=train num_frames=3 path={_path(corpus, 'keypoints', vid)} nonfinite_values=1") in msg
    assert "NaN/inf" in msg and "dvc repro extract_keypoints" in msg
    report = json.loads((corpus / "report" / "keypoints.json").read_text())
    assert report["success"] is False and report["num_failed"] == 1


def test_missing_and_unreadable_keypoint_files(corpus):
    (corpus / "keypoints" / f"{IDS[0]}.npz").unlink()
    (corpus / "keypoints" / f"{IDS[4]}.npz").write_bytes(b"not a zip archive")
    save_npz(corpus / "keypoints" / f"{IDS[3]}.npz", landmarks=np.zeros((4, 5, 3), np.float32))
    msg = _keypoints_fail(corpus)
    assert "2 of 6 expectations" in msg  # each broken file is reported by one expectation only
    assert (f"on column 'file_present': 1 row(s)\n    id={IDS[0]} split=train num_frames=5 "
            f"path={_path(corpus, 'keypoints', IDS[0])}\n  fix: the feature file is missing") in msg
    assert f"on column 'file_readable': 2 row(s)\n    id={IDS[3]} split=dev" in msg
    assert "detail=ValueError: no array(s) mask, frame_size (holds landmarks)" in msg
    assert (f"id={IDS[4]} split=test num_frames=6 path={_path(corpus, 'keypoints', IDS[4])} "
            "detail=ValueError: not an .npz archive") in msg


def test_frame_count_mismatch(corpus):
    vid = IDS[2]
    save_npz(corpus / "keypoints" / f"{vid}.npz", **keypoints(FRAMES[vid] - 1))
    msg = _keypoints_fail(corpus)
    assert (f"on column 'frames_match_manifest': 1 row(s)\n    id={vid} split=train num_frames=10 "
            f"path={_path(corpus, 'keypoints', vid)} frames_in_file=9") in msg
    assert "the features are stale" in msg


def test_out_of_range_coordinates_only_where_detected(corpus):
    vid, other = IDS[0], IDS[1]
    arrays = keypoints(FRAMES[vid])
    arrays["landmarks"][2, LEFT_HAND.start, 1] = 3.5  # detected joint far below the image
    save_npz(corpus / "keypoints" / f"{vid}.npz", **arrays)
    arrays = keypoints(FRAMES[other])
    arrays["landmarks"][0, RIGHT_HAND.start, 0] = -7.0  # undetected joint: ignored
    save_npz(corpus / "keypoints" / f"{other}.npz", **arrays)
    msg = _keypoints_fail(corpus)
    assert (f"on column 'xy_in_range': 1 row(s)\n    id={vid} split=train num_frames=5 "
            f"path={_path(corpus, 'keypoints', vid)} xy_min=") in msg
    assert "xy_max=3.5" in msg and "outside [-0.5, 1.5]" in msg


def test_too_low_detection_rate_lists_worst_videos(corpus):
    for vid in IDS[:3]:
        arrays = keypoints(FRAMES[vid])
        arrays["mask"][1:, LEFT_HAND] = False
        arrays["mask"][:, RIGHT_HAND] = False
        save_npz(corpus / "keypoints" / f"{vid}.npz", **arrays)
    msg = _keypoints_fail(corpus, min_detection_rate=0.7)
    # rates 1/5, 1/3, 1/10, 1, 1 -> mean 0.5267
    assert "expect_column_mean_to_be_between on column 'hand_detection_rate': observed 0.526" in msg
    assert "(lowest 5 listed)" in msg and "observed 0.5267 " in msg
    lines = msg.splitlines()
    first = lines.index(next(line for line in lines if "hand_detection_rate': observed" in line))
    assert lines[first + 1] == (f"    id={IDS[2]} split=train num_frames=10 path={_path(corpus, 'keypoints', IDS[2])} "
                                "hand_detection_rate=0.1")
    assert "min_detection_rate=0.7" in msg
    summary = json.loads((corpus / "report" / "keypoints.json").read_text())
    assert summary["mean_hand_detection_rate"] == pytest.approx(0.5267, abs=1e-4)


def test_flow_with_huge_values_and_wrong_size(corpus):
    vid, other = IDS[3], IDS[4]
    save_npz(corpus / "flow" / f"{vid}.npz", **flow(FRAMES[vid], scale=10.0))
    save_npz(corpus / "flow" / f"{other}.npz", **flow(FRAMES[other], hw=(4, 3)))
    msg = _flow_fail(corpus)
    assert "2 of 6 expectations of the 'flow' suite" in msg
    assert (f"expect_column_values_to_be_between on column 'max_abs_flow_px': 1 row(s)\n"
            f"    id={vid} split=dev num_frames=4 path={_path(corpus, 'flow', vid)} max_abs_flow_px=1270.0") in msg
    assert "max_abs_flow=20.0 px" in msg
    # without explicit height/width the corpus' most common size is the expected one
    assert (f"on column 'flow_size': 1 row(s)\n    id={other} split=test num_frames=6 "
            f"path={_path(corpus, 'flow', other)} flow_size=4x3") in msg


def test_flow_missing_stale_and_non_finite(corpus):
    (corpus / "flow" / f"{IDS[0]}.npz").unlink()
    save_npz(corpus / "flow" / f"{IDS[1]}.npz", **flow(FRAMES[IDS[1]] + 2))
    save_npz(corpus / "flow" / f"{IDS[2]}.npz", **flow(FRAMES[IDS[2]], scale=float("nan")))
    msg = _flow_fail(corpus, height=8, width=6)
    assert f"on column 'file_present': 1 row(s)\n    id={IDS[0]}" in msg and "dvc repro extract_flow" in msg
    assert f"on column 'frames_match_manifest': 1 row(s)\n    id={IDS[1]}" in msg and "frames_in_file=5" in msg
    assert f"on column 'values_finite': 1 row(s)\n    id={IDS[2]}" in msg
    assert "max_abs_flow_px" not in msg  # a NaN scale is reported by values_finite only


def test_bad_thresholds(corpus):
    with pytest.raises(ValueError, match="min_detection_rate"):
        validate_keypoints(corpus / "manifest", corpus / "keypoints", min_detection_rate=1.5, report_dir=corpus / "r")
    with pytest.raises(ValueError, match="max_abs_flow"):
        validate_flow(corpus / "manifest", corpus / "flow", max_abs_flow=0, report_dir=corpus / "r")
