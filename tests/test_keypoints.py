"""Keypoint extraction: joint set, MediaPipe output contract, normalisation, cache and error policy."""

from __future__ import annotations

import os
import shutil

import cv2
import numpy as np
import pytest

from signkd.data.manifest import Sample
from signkd.features import keypoints as kp
from signkd.features import parallel
from signkd.features.frames import list_image_files
from signkd.features.parallel import ExtractionError, run_per_video
from signkd.io import load_npz, save_npz


def _folder(root, name: str, num_frames: int = 2, value: int = 0):
    folder = root / name
    folder.mkdir(parents=True)
    for index in range(num_frames):
        cv2.imwrite(str(folder / f"{index:04d}.png"), np.full((64, 48, 3), value, np.uint8))
    return folder


def _sample(sample_id: str, frames_dir, split: str = "train") -> Sample:
    return Sample(id=sample_id, split=split, frames_dir=str(frames_dir), signer="s1",
                  num_frames=0, glosses=("REGEN",))


def test_joint_set_is_consistent():
    assert kp.NUM_JOINTS == len(kp.JOINT_NAMES) == 9 + 21 + 21 + len(kp.FACE_INDICES)
    assert len(set(kp.JOINT_NAMES)) == kp.NUM_JOINTS
    assert 18 <= len(kp.FACE_INDICES) <= 24 and len(set(kp.FACE_INDICES)) == len(kp.FACE_INDICES)
    assert kp.POSE_INDICES == (0, 11, 12, 13, 14, 15, 16, 23, 24)
    spans = [kp.POSE, kp.LEFT_HAND, kp.RIGHT_HAND, kp.FACE]
    assert spans[0].start == 0 and spans[-1].stop == kp.NUM_JOINTS
    assert all(a.stop == b.start for a, b in zip(spans, spans[1:]))
    assert kp.JOINT_NAMES[kp.LEFT_SHOULDER] == "pose_left_shoulder"
    assert kp.JOINT_NAMES[kp.RIGHT_HAND][0] == "right_hand_wrist"


def test_blank_frames_give_finite_zeros_and_empty_mask():
    landmarks, mask = kp.KeypointExtractor().extract(np.zeros((3, 64, 48, 3), np.uint8))
    assert landmarks.shape == (3, kp.NUM_JOINTS, 3) and landmarks.dtype == np.float32
    assert mask.shape == (3, kp.NUM_JOINTS) and mask.dtype == bool
    assert not mask.any() and np.all(landmarks == 0)


def _pose(frames: int, left=(0.4, 0.5), right=(0.6, 0.5)):
    landmarks = np.zeros((frames, kp.NUM_JOINTS, 3), np.float32)
    mask = np.zeros((frames, kp.NUM_JOINTS), bool)
    landmarks[:, kp.LEFT_SHOULDER, :2] = left
    landmarks[:, kp.RIGHT_SHOULDER, :2] = right
    mask[:, [kp.LEFT_SHOULDER, kp.RIGHT_SHOULDER]] = True
    return landmarks, mask


def test_normalize_centres_on_shoulders_and_scales_by_their_width():
    landmarks, mask = _pose(4)
    wrist = kp.LEFT_HAND.start
    landmarks[:, wrist, :2] = (0.7, 0.3)
    mask[:, wrist] = True
    landmarks[3, kp.LEFT_SHOULDER, :2] = (0.9, 0.9)  # one bad frame must not move the median much
    mask[2, [kp.LEFT_SHOULDER, kp.RIGHT_SHOULDER]] = False  # a frame without pose
    mask[1, wrist] = False
    out = kp.normalize_keypoints(landmarks, mask)
    assert out.shape == (4, kp.NUM_JOINTS, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, wrist], (1.0, -1.0), atol=1e-5)
    np.testing.assert_allclose(out[0, kp.RIGHT_SHOULDER], (0.5, 0.0), atol=1e-5)
    assert np.all(out[1, wrist] == 0) and np.all(out[2, kp.LEFT_SHOULDER] == 0)
    assert np.isfinite(out).all()


def test_normalize_without_shoulders_falls_back_to_image_coordinates():
    landmarks = np.zeros((2, kp.NUM_JOINTS, 3), np.float32)
    mask = np.zeros((2, kp.NUM_JOINTS), bool)
    landmarks[:, kp.FACE.start, :2] = (0.75, 0.25)
    mask[:, kp.FACE.start] = True
    out = kp.normalize_keypoints(landmarks, mask)
    np.testing.assert_allclose(out[:, kp.FACE.start], [(0.25, -0.25)] * 2, atol=1e-6)
    assert np.count_nonzero(out) == 4
    empty = kp.normalize_keypoints(np.zeros((0, kp.NUM_JOINTS, 3)), np.zeros((0, kp.NUM_JOINTS), bool))
    assert empty.shape == (0, kp.NUM_JOINTS, 2)


def test_normalize_uses_aspect_ratio():
    landmarks, mask = _pose(1, left=(0.4, 0.5), right=(0.6, 0.5))
    landmarks[0, kp.FACE.start, :2] = (0.5, 0.3)
    mask[0, kp.FACE.start] = True
    out = kp.normalize_keypoints(landmarks, mask, aspect=0.5)  # frame half as wide as tall
    np.testing.assert_allclose(out[0, kp.FACE.start], (0.0, -2.0), atol=1e-5)


def test_extract_keypoints_writes_files_and_stats(tmp_path):
    samples = [_sample("a", _folder(tmp_path, "a", 2)), _sample("b", _folder(tmp_path, "b", 3), "dev")]
    stats = kp.extract_keypoints(samples, tmp_path / "out", workers=1, progress=False)
    arrays = load_npz(tmp_path / "out" / "b.npz")
    assert arrays["landmarks"].shape == (3, kp.NUM_JOINTS, 3) and arrays["mask"].dtype == bool
    assert arrays["frame_size"].tolist() == [64, 48]
    xy, mask = kp.load_keypoints(tmp_path / "out" / "b.npz")
    assert xy.shape == (3, kp.NUM_JOINTS, 2) and not mask.any()
    assert stats["videos"] == stats["processed"] == 2 and stats["skipped"] == 0
    assert stats["frames"] == 5 and stats["frames_per_second"] > 0
    assert stats["detection_rate"] == {"pose": 0.0, "left_hand": 0.0, "right_hand": 0.0, "face": 0.0}
    assert set(stats["per_split"]) == {"train", "dev"} and stats["per_split"]["dev"]["frames"] == 3


def _corrupt_folder(root):
    folder = _folder(root, "broken", 1)
    (folder / "0001.png").write_bytes(np.random.default_rng(0).bytes(200))
    return folder


def test_corrupt_frame_fails_with_video_id_and_path(tmp_path):
    samples = [_sample("good", _folder(tmp_path, "good")), _sample("broken", _corrupt_folder(tmp_path))]
    with pytest.raises(ExtractionError, match=r"'broken' \(.*broken\).*cannot decode image .*0001\.png"):
        kp.extract_keypoints(samples, tmp_path / "out", workers=1, progress=False)
    assert not (tmp_path / "out" / "broken.npz").exists()


def test_corrupt_frame_and_empty_folder_are_skipped_on_request(tmp_path):
    (tmp_path / "empty").mkdir()
    samples = [_sample("broken", _corrupt_folder(tmp_path)), _sample("good", _folder(tmp_path, "good")),
               _sample("empty", tmp_path / "empty")]
    stats = kp.extract_keypoints(samples, tmp_path / "out", workers=1, on_error="skip", progress=False)
    assert (stats["processed"], stats["skipped"], stats["frames"]) == (1, 2, 2)
    reasons = {s["id"]: s["reason"] for s in stats["skipped_videos"]}
    assert "cannot decode image" in reasons["broken"] and "contains no images" in reasons["empty"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.npz"]


def test_worker_pool_reports_errors_and_matches_inline(tmp_path):
    samples = [_sample(f"v{i}", _folder(tmp_path, f"v{i}", 2, value=40 * i)) for i in range(2)]
    samples.append(_sample("broken", _corrupt_folder(tmp_path)))
    stats = kp.extract_keypoints(samples, tmp_path / "pool", workers=2, on_error="skip", progress=False)
    assert stats["skipped_videos"][0]["id"] == "broken" and "cannot decode" in stats["skipped_videos"][0]["reason"]
    kp.extract_keypoints(samples[:2], tmp_path / "inline", workers=1, progress=False)
    for sample in samples[:2]:
        name = f"{sample.id}.npz"
        pooled, inline = load_npz(tmp_path / "pool" / name), load_npz(tmp_path / "inline" / name)
        assert all(np.array_equal(pooled[k], inline[k]) for k in inline)


def test_one_frame_video_file(tmp_path):
    path = tmp_path / "one.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (48, 64))
    writer.write(np.zeros((64, 48, 3), np.uint8))
    writer.release()
    stats = kp.extract_keypoints([_sample("one", path)], tmp_path / "out", workers=1, progress=False)
    assert stats["frames"] == 1
    assert load_npz(tmp_path / "out" / "one.npz")["landmarks"].shape == (1, kp.NUM_JOINTS, 3)


def test_interrupted_run_resumes_only_unfinished_videos(tmp_path, monkeypatch):
    samples = [_sample(name, _folder(tmp_path, name, 1, value=60 * i)) for i, name in enumerate("abcd")]
    out = tmp_path / "out"
    kp.extract_keypoints(samples, out, workers=1, progress=False)
    before = {s.id: load_npz(out / f"{s.id}.npz") for s in samples}
    (out / "b.npz").unlink()
    np.savez(out / "c.npz", landmarks=np.zeros((1, 5, 3), np.float32))  # another joint set: recompute
    (out / "d.npz").write_bytes(b"PK\x03\x04 not a zip")  # unreadable: recompute
    (out / ".a.npz.x1y2.tmp").write_bytes(b"left by a killed run")

    computed = []
    original = kp.keypoints_for_video
    monkeypatch.setattr(kp, "keypoints_for_video",
                        lambda source, **kw: computed.append(source.name) or original(source, **kw))
    stats = kp.extract_keypoints(samples, out, workers=1, progress=False)
    assert sorted(computed) == ["b", "c", "d"]
    assert (stats["cached"], stats["processed"], stats["frames"]) == (1, 3, 4)
    for sample in samples:
        after = load_npz(out / f"{sample.id}.npz")
        assert all(np.array_equal(before[sample.id][k], after[k]) for k in after)
    assert not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("kwargs, message", [
    ({"workers": 0}, "workers must be an integer >= 1"),
    ({"workers": 1, "on_error": "ignore"}, "on_error must be one of fail, skip"),
])
def test_invalid_options(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        kp.extract_keypoints([], tmp_path, progress=False, **kwargs)


def test_duplicate_ids_are_refused(tmp_path):
    folder = _folder(tmp_path, "a", 1)
    with pytest.raises(ValueError, match="unique.*'a'"):
        kp.extract_keypoints([_sample("a", folder), _sample("a", folder)], tmp_path / "out", workers=1,
                             progress=False)


def test_rendered_signer_is_detected_identically_by_any_worker_count(tmp_path):
    """The synthetic corpus is meant to be MediaPipe-detectable; check it on two short clips."""
    synthetic = pytest.importorskip("signkd.data.synthetic")
    synthetic.render_corpus(tmp_path / "raw", seed=3, num_train=1, num_dev=1, num_test=1, num_signers=1,
                            min_signs=2, max_signs=2, height=260, width=210, progress=False)
    folders = sorted({p.parent for p in (tmp_path / "raw").rglob("*.png")})
    assert folders, "the renderer wrote no PNG frames"
    frames = list_image_files(folders[0])
    samples = []
    for name, first in (("early", len(frames) // 4), ("late", len(frames) // 2)):
        clip = tmp_path / name
        clip.mkdir()
        for index, frame in enumerate(frames[first:first + 8]):
            shutil.copy(frame, clip / f"{index:04d}.png")
        samples.append(_sample(name, clip))
    stats = kp.extract_keypoints(samples, tmp_path / "inline", workers=1, progress=False)
    assert stats["detection_rate"]["pose"] >= 0.5 and stats["detection_rate"]["face"] >= 0.5
    assert max(stats["detection_rate"]["left_hand"], stats["detection_rate"]["right_hand"]) > 0
    kp.extract_keypoints(samples, tmp_path / "pool", workers=2, progress=False)
    for sample in samples:
        name = f"{sample.id}.npz"
        inline, pooled = load_npz(tmp_path / "inline" / name), load_npz(tmp_path / "pool" / name)
        assert all(np.array_equal(inline[k], pooled[k]) for k in inline)
        xy, mask = kp.load_keypoints(tmp_path / "inline" / name)
        assert np.isfinite(xy).all() and np.abs(xy[mask]).max() < 10


def _track(values) -> tuple[np.ndarray, np.ndarray]:
    """One joint per part (pose, left hand, face) following `values` (None = not detected)."""
    landmarks = np.zeros((len(values), kp.NUM_JOINTS, 3), np.float32)
    mask = np.zeros((len(values), kp.NUM_JOINTS), bool)
    for t, v in enumerate(values):
        if v is not None:
            landmarks[t, :, :] = (v, 2 * v, -v)
            mask[t, :] = True
    return landmarks, mask


def test_interpolate_gaps_fills_short_gaps_between_detections_only():
    seen = [None, 0.1, None, None, 0.4, 0.5, None, None, None, None, None, 1.0, None]
    landmarks, mask = _track(seen)
    filled, interpolated = kp.interpolate_gaps(landmarks, mask, max_gap=4)
    assert interpolated.shape == mask.shape and interpolated.dtype == bool
    assert np.flatnonzero(interpolated[:, 0]).tolist() == [2, 3]  # the 5-frame gap and both ends stay empty
    assert (interpolated == interpolated[:, :1]).all()  # every part the same here
    np.testing.assert_allclose(filled[2:4, kp.LEFT_HAND.start], [(0.2, 0.4, -0.2), (0.3, 0.6, -0.3)], atol=1e-6)
    assert np.all(filled[[0, 6, 7, 8, 9, 10, 12]] == 0) and np.array_equal(filled[mask], landmarks[mask])
    assert not (interpolated & mask).any()
    assert np.flatnonzero(kp.interpolate_gaps(landmarks, mask, max_gap=5)[1][:, 0]).tolist() == [2, 3, 6, 7, 8, 9, 10]
    none, nothing = kp.interpolate_gaps(landmarks, mask, max_gap=0)
    assert not nothing.any() and np.array_equal(none, landmarks)
    with pytest.raises(ValueError, match="max_gap must be an integer >= 0"):
        kp.interpolate_gaps(landmarks, mask, max_gap=-1)


def test_interpolation_is_per_joint_for_pose_and_filled_mask_combines():
    landmarks, mask = _track([0.2, 0.3, 0.4])
    mask[1, kp.LEFT_SHOULDER] = False  # a pose joint below the visibility threshold alone
    mask[1, kp.RIGHT_HAND] = False  # the whole right hand missed
    landmarks[1, ~mask[1]] = 0
    filled, interpolated = kp.interpolate_gaps(landmarks, mask, max_gap=1)
    right_hand = list(range(kp.RIGHT_HAND.start, kp.RIGHT_HAND.stop))
    assert np.flatnonzero(interpolated[1]).tolist() == [kp.LEFT_SHOULDER, *right_hand]
    np.testing.assert_allclose(filled[1, kp.LEFT_SHOULDER], (0.3, 0.6, -0.3), atol=1e-6)
    arrays = {"mask": mask, "interpolated": interpolated}
    assert kp.filled_mask(arrays).all() and kp.filled_mask({"mask": mask}).sum() == mask.sum()


def test_extract_keypoints_stores_interpolation_and_refreshes_it_without_mediapipe(tmp_path, monkeypatch):
    samples = [_sample("a", _folder(tmp_path, "a", 5))]
    out = tmp_path / "out"
    kp.extract_keypoints(samples, out, workers=1, progress=False)
    arrays = load_npz(out / "a.npz")
    assert arrays["interpolated"].shape == (5, kp.NUM_JOINTS) and int(arrays["max_gap"]) == kp.DEFAULT_MAX_GAP
    landmarks, mask = _track([0.1, None, None, 0.4, None])  # as if MediaPipe had seen this
    save_npz(out / "a.npz", **(arrays | {"landmarks": landmarks, "mask": mask}))

    def no_mediapipe(self, frames):
        raise AssertionError("a max_gap change must not re-run MediaPipe")

    monkeypatch.setattr(kp.KeypointExtractor, "extract", no_mediapipe)
    stats = kp.extract_keypoints(samples, out, workers=1, max_gap=2, progress=False)
    refreshed = load_npz(out / "a.npz")
    assert (stats["cached"], stats["processed"]) == (1, 0) and int(refreshed["max_gap"]) == 2
    assert np.flatnonzero(refreshed["interpolated"][:, 0]).tolist() == [1, 2]
    assert np.array_equal(refreshed["mask"], mask)
    np.testing.assert_allclose(refreshed["landmarks"][2, 0], (0.3, 0.6, -0.3), atol=1e-6)
    assert stats["interpolated_rate"]["left_hand"] == 0.4 and stats["detection_rate"]["left_hand"] == 0.4
    with pytest.raises(ValueError, match="max_gap"):
        kp.extract_keypoints(samples, out, workers=1, max_gap=-2, progress=False)


class _Extractor:
    """A cheap stand-in for MediaPipe whose output depends on the frames' content; records calls."""

    def __init__(self, fail_on=()):
        self.fail_on, self.computed = set(fail_on), []

    def __call__(self, source):
        self.computed.append(source.name)
        if source.name in self.fail_on:
            raise RuntimeError("simulated crash")
        return {"mean": np.array([cv2.imread(str(f)).mean() for f in list_image_files(source)], np.float32)}


def _frame_count(arrays):
    return {"frames": len(arrays["mean"])}


def _run(samples, out, extractor=None, **kwargs):
    return run_per_video(samples, out, extractor or _Extractor(), _frame_count, workers=1, progress=False,
                         **kwargs)


def test_interrupted_run_resumes_and_equals_an_uninterrupted_one(tmp_path):
    samples = [_sample(n, _folder(tmp_path, n, 2, value=30 * i)) for i, n in enumerate("abcde")]
    _run(samples, tmp_path / "whole")
    with pytest.raises(ExtractionError, match="'c'.*simulated crash"):
        _run(samples, tmp_path / "out", _Extractor(fail_on={"c"}), on_error="fail")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.npz", "b.npz"]
    extractor = _Extractor()
    report = _run(samples, tmp_path / "out", extractor)
    assert extractor.computed == ["c", "d", "e"] and len(report.with_status("cached")) == 2
    for s in samples:
        whole, resumed = load_npz(tmp_path / "whole" / f"{s.id}.npz"), load_npz(tmp_path / "out" / f"{s.id}.npz")
        assert whole.keys() == resumed.keys() and all(np.array_equal(whole[k], resumed[k]) for k in whole)
        assert set(parallel.FINGERPRINT_KEYS) <= whole.keys()


def test_changed_input_is_recomputed_and_dropped_ids_are_removed(tmp_path):
    samples = [_sample(n, _folder(tmp_path, n, 2, value=20 * i)) for i, n in enumerate("abcdef")]
    out = tmp_path / "out"
    _run(samples, out)
    cv2.imwrite(str(tmp_path / "a" / "0001.png"), np.full((64, 48, 3), 99, np.uint8))  # new content
    cv2.imwrite(str(tmp_path / "c" / "0002.png"), np.full((64, 48, 3), 40, np.uint8))  # an added frame
    touched = tmp_path / "b" / "0000.png"  # same bytes, new mtime (re-render, dvc checkout)
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    b_before = (out / "b.npz").read_bytes(), (out / "b.npz").stat().st_mtime_ns
    old = load_npz(out / "e.npz")
    np.savez(out / "e.npz", mean=old["mean"])  # an output without fingerprints: origin unknown
    (out / "gone.npz").write_bytes(b"from a video no longer in the corpus")

    extractor = _Extractor()
    report = _run(samples, out, extractor)
    assert sorted(extractor.computed) == ["a", "c", "e"] and report.removed_stale == ["gone"]
    assert report.base_stats()["removed_stale"] == 1 and not (out / "gone.npz").exists()
    assert load_npz(out / "a.npz")["mean"][1] == 99 and len(load_npz(out / "c.npz")["mean"]) == 3
    # same frames: kept as it was, not rewritten (a rewrite would change data/keypoints for DVC)
    assert ((out / "b.npz").read_bytes(), (out / "b.npz").stat().st_mtime_ns) == b_before

    extractor = _Extractor()
    report = _run(samples[:4], out, extractor)  # d survives, e and f are dropped from the corpus
    assert extractor.computed == [] and sorted(report.removed_stale) == ["e", "f"]
    assert sorted(p.name for p in out.iterdir()) == ["a.npz", "b.npz", "c.npz", "d.npz"]


def test_a_video_that_now_fails_loses_its_old_output(tmp_path):
    samples = [_sample("a", _folder(tmp_path, "a", 2))]
    _run(samples, tmp_path / "out")
    (tmp_path / "a" / "0001.png").write_bytes(b"corrupt now")
    report = _run(samples, tmp_path / "out", on_error="skip")
    assert report.with_status("skipped") and not (tmp_path / "out" / "a.npz").exists()


def test_fingerprints_of_missing_sources_are_none(tmp_path):
    assert parallel.stat_fingerprint(tmp_path / "nope") is None
    assert parallel.content_fingerprint(tmp_path / "nope") is None
    (tmp_path / "empty").mkdir()
    assert parallel.stat_fingerprint(tmp_path / "empty") is None
    video = tmp_path / "v.mp4"
    video.write_bytes(b"1234")
    assert parallel.stat_fingerprint(video) and parallel.content_fingerprint(video)


def test_strided_extraction_runs_mediapipe_on_every_nth_frame_and_equals_thinned_training_keypoints(tmp_path, monkeypatch):
    """`recognize` with a strided student and the student's training data must see the same
    landmarks: thinned(every-frame arrays, n) == keypoints_for_video(..., frame_stride=n)."""
    values = [0.1, None, 0.3, 0.35, 0.5, None, None, 0.8, 0.9, 1.0, None]  # None: MediaPipe misses the frame
    folder = tmp_path / "v"
    folder.mkdir()
    for i in range(len(values)):
        cv2.imwrite(str(folder / f"{i:04d}.png"), np.full((64, 48, 3), i, np.uint8))
    seen: list[int] = []

    def per_frame(self, frames):  # stand-in for MediaPipe: frame i (its pixel value) gives values[i]
        index = [int(f[0, 0, 0]) for f in frames]
        seen.extend(index)
        return _track([values[i] for i in index])

    monkeypatch.setattr(kp.KeypointExtractor, "extract", per_frame)
    every = kp.keypoints_for_video(folder, max_gap=1)
    assert seen == list(range(len(values)))
    for stride in (2, 3):
        seen.clear()
        strided = kp.keypoints_for_video(folder, max_gap=1, frame_stride=stride)
        assert seen == list(range(0, len(values), stride)), "MediaPipe runs on the kept frames only"
        thinned = kp.thinned(every, stride)
        for key in ("landmarks", "mask", "interpolated", "max_gap", "frame_size"):
            np.testing.assert_array_equal(strided[key], thinned[key], err_msg=f"{key} at stride {stride}")
        assert strided["landmarks"].shape[0] == len(values)
    # stride 2 runs frames 0, 2, 4, 6, 8, 10 and misses 6 and 10: gaps up to max_gap + 1 are filled
    strided = kp.keypoints_for_video(folder, max_gap=1, frame_stride=2)
    assert np.flatnonzero(kp.filled_mask(strided)[:, 0]).tolist() == [0, 1, 2, 3, 4, 8]  # 5-7: 3 > 2
    strided = kp.keypoints_for_video(folder, max_gap=2, frame_stride=2)
    assert np.flatnonzero(kp.filled_mask(strided)[:, 0]).tolist() == list(range(9))  # the trailing 9, 10 stay empty
    np.testing.assert_allclose(strided["landmarks"][6, 0], (0.7, 1.4, -0.7), atol=1e-6)  # halfway from 4 (0.5) to 8 (0.9)
    assert kp.thinned(every, 1) is every
