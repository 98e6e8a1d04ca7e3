"""Keypoint accuracy against renderer ground truth, on hand-made arrays with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from signkd.data.manifest import Sample
from signkd.data.render import POSE_NAMES as GT_POSE_NAMES
from signkd.features import keypoints as kp
from signkd.features.accuracy import accuracy_of, keypoint_accuracy, miss_conditions, plot_accuracy
from signkd.io import save_npz

H, W, T = 80, 100, 4
HAND = np.array([(i % 5 * 5.0, i // 5 * 5.0) for i in range(21)], np.float32)  # bbox 20 x 20
GT_POSE = {"nose": (50, 10), "left_eye": (53, 8), "right_eye": (47, 8), "left_ear": (57, 9), "right_ear": (43, 9),
           "left_shoulder": (65, 20), "right_shoulder": (35, 20), "left_elbow": (75, 45), "right_elbow": (25, 45),
           "left_wrist": (70, 60), "right_wrist": (30, 60), "left_hip": (60, 75), "right_hip": (40, 75)}


def _ground_truth() -> dict:
    hands = np.stack([HAND + (60, 30), HAND + (20, 30)])  # signer's left hand on the image's right
    joint_visible = np.ones((T, 2, 21), bool)
    joint_visible[3, 0] = False  # the left hand occluded in the last frame
    return {
        "hand_joints": np.repeat(hands[None], T, axis=0),
        "hand_joint_visible": joint_visible,
        "hand_visible": joint_visible.sum(axis=2) >= 19,
        "pose_joints": np.repeat(np.array([GT_POSE[n] for n in GT_POSE_NAMES], np.float32)[None], T, axis=0),
        "pose_visible": np.ones((T, len(GT_POSE_NAMES)), bool),
    }


def _normalised(pixels: np.ndarray) -> np.ndarray:
    """Renderer pixels (centres at integers) -> MediaPipe's edge-based fractions."""
    return (pixels + 0.5) / np.array([W, H], np.float32)


def _keypoints(gt: dict) -> dict:
    """Perfect in frame 0; errors of known size in frames 1-3 (see the test)."""
    landmarks = np.zeros((T, kp.NUM_JOINTS, 3), np.float32)
    mask = np.ones((T, kp.NUM_JOINTS), bool)
    interpolated = np.zeros_like(mask)
    pose = np.array([GT_POSE[n] for n in kp.POSE_NAMES], np.float32)
    for t in range(T):
        left, right = gt["hand_joints"][t]
        if t == 1:
            left = left + (3.0, 0.0)  # 0.15 hand sizes: wrong at PCK@0.1, right at @0.2
        if t == 2:
            left, right = right, left  # sides swapped
        landmarks[t, kp.LEFT_HAND, :2] = _normalised(left)
        landmarks[t, kp.RIGHT_HAND, :2] = _normalised(right)
        arm = pose.copy()
        if t == 1:
            arm[kp.POSE_NAMES.index("left_elbow")] += (0.0, 4.5)  # 0.15 shoulder widths
        landmarks[t, kp.POSE, :2] = _normalised(arm)
        landmarks[t, kp.FACE, :2] = _normalised(np.array(GT_POSE["nose"], np.float32))
    mask[3, kp.RIGHT_HAND] = False  # missed although visible ...
    interpolated[3, kp.RIGHT_HAND] = True  # ... and filled in exactly
    return {"landmarks": landmarks, "mask": mask, "interpolated": interpolated,
            "frame_size": np.array([H, W], np.int32)}


def _sample(sample_id: str) -> Sample:
    return Sample(id=sample_id, split="test", frames_dir="unused", signer="s", num_frames=T, glosses=("A",))


@pytest.fixture
def dirs(tmp_path):
    gt = _ground_truth()
    save_npz(tmp_path / "gt" / "v.npz", **gt)
    save_npz(tmp_path / "kp" / "v.npz", **_keypoints(gt))
    save_npz(tmp_path / "kp" / "no_truth.npz", **_keypoints(gt))  # a video the renderer did not make
    return tmp_path / "kp", tmp_path / "gt"


def test_known_errors_give_known_figures(dirs):
    stats = keypoint_accuracy([_sample("v"), _sample("no_truth"), _sample("not_extracted")], *dirs)
    assert stats["accuracy_videos"] == 1
    assert stats["detection_rate_gt_left_hand"] == 1.0 and stats["detection_rate_gt_right_hand"] == 0.75
    assert stats["detection_rate_gt_pose"] == stats["detection_rate_gt_face"] == 1.0
    assert stats["detection_rate_gt_arm_joints"] == 1.0
    assert stats["false_detection_rate_hand"] == 1.0  # the occluded left hand was reported
    assert stats["hand_swap_rate"] == round(2 / 7, 4)  # both hands in frame 2, of 7 detected hands
    assert stats["pck01_hand"] == 0.5 and stats["pck02_hand"] == round(84 / 126, 4)
    assert stats["pck01_arm"] == round(23 / 24, 4) and stats["pck02_arm"] == 1.0
    assert stats["pck02_hand_interpolated"] == 1.0
    # exact detections give exactly zero offset: the half-pixel conversion matches the renderer's
    assert stats["bias_x_px_hand"] == stats["bias_y_px_hand"] == 0.0
    assert stats["bias_x_px_arm"] == stats["bias_y_px_arm"] == 0.0
    curve = stats["pck_curve"]
    assert curve["threshold"][0] == 0.0 and curve["threshold"][-1] == 0.5
    assert curve["hand"][-1] == stats["pck02_hand"] and curve["arm"] == sorted(curve["arm"])


def test_no_ground_truth_gives_empty_stats_and_mismatch_is_an_error(dirs, tmp_path):
    keypoint_dir, truth_dir = dirs
    assert keypoint_accuracy([_sample("no_truth")], keypoint_dir, truth_dir) == {}
    assert keypoint_accuracy([_sample("v")], keypoint_dir, tmp_path / "missing") == {}
    short = {k: v[:2] for k, v in _ground_truth().items()}
    save_npz(truth_dir / "no_truth.npz", **short)
    with pytest.raises(ValueError, match="'no_truth': 4 extracted frames but 2"):
        keypoint_accuracy([_sample("no_truth")], keypoint_dir, truth_dir)


def test_plot_accuracy_writes_a_png_with_or_without_figures(dirs, tmp_path):
    stats = keypoint_accuracy([_sample("v")], *dirs)
    plot_accuracy(stats, tmp_path / "fig" / "accuracy.png")
    plot_accuracy({}, tmp_path / "empty.png", note="(dataset 'phoenix2014t')")
    for name in ("fig/accuracy.png", "empty.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.rglob("*.tmp"))


def _attribution_case() -> tuple[dict, dict]:
    """Six frames; every miss has a known cause (see test_misses_are_attributed_to_their_causes)."""
    n = 6
    left = np.repeat((HAND + (60, 30))[None], n, axis=0)
    right = np.stack([HAND + (20 + dx, 30) for dx in (0, 0, 0, 0, 10, 20)])  # fast from frame 3 on
    far = np.array([0, 0, 1, 1], np.float32)
    face_box = np.stack([far, far, [60, 30, 80, 50], [60, 30, 80, 50], far, far]).astype(np.float32)
    contrast = np.full((n, 2), 0.5, np.float32)
    contrast[5, 0] = 0.1  # the left hand against a background of nearly its own brightness
    gt = {"hand_joints": np.stack([left, right], axis=1), "hand_joint_visible": np.ones((n, 2, 21), bool),
          "hand_visible": np.ones((n, 2), bool), "face_box": face_box, "hand_contrast": contrast,
          "pose_joints": np.repeat(np.array([GT_POSE[k] for k in GT_POSE_NAMES], np.float32)[None], n, axis=0),
          "pose_visible": np.ones((n, len(GT_POSE_NAMES)), bool)}
    landmarks = np.zeros((n, kp.NUM_JOINTS, 3), np.float32)
    mask = np.ones((n, kp.NUM_JOINTS), bool)
    for t in range(n):
        landmarks[t, kp.LEFT_HAND, :2] = _normalised(left[t])
        landmarks[t, kp.RIGHT_HAND, :2] = _normalised(right[t])
        landmarks[t, kp.POSE, :2] = _normalised(np.array([GT_POSE[k] for k in kp.POSE_NAMES], np.float32))
    for t in (2, 5):  # left: in front of the face, then low contrast
        mask[t, kp.LEFT_HAND] = False
    for t in (0, 3, 4):  # right: once for no visible reason, then twice while moving fast
        mask[t, kp.RIGHT_HAND] = False
    return {"landmarks": landmarks, "mask": mask, "frame_size": np.array([H, W], np.int32)}, gt


def test_misses_are_attributed_to_their_causes():
    keypoints, gt = _attribution_case()
    conditions = miss_conditions(gt)
    assert conditions["fast_motion"][:, 1].tolist() == [False, False, False, True, True, True]
    assert not conditions["fast_motion"][:, 0].any() and not conditions["hand_overlap"].any()
    assert conditions["face_overlap"][:, 0].tolist() == [False, False, True, True, False, False]
    assert np.flatnonzero(conditions["low_contrast"]).tolist() == [10]  # frame 5, hand 0
    stats = accuracy_of([("v", keypoints, gt)])
    assert stats["detection_rate_gt_left_hand"] == round(4 / 6, 4) and stats["detection_rate_gt_right_hand"] == 0.5
    assert stats["detection_rate_gt_both_hands"] == round(1 / 6, 4)  # only frame 1 has both
    # five misses: left 2 (face), left 5 (contrast), right 3 and 4 (fast), right 0 (nothing)
    assert stats["miss_share_fast_motion"] == 0.4 and stats["miss_share_face_overlap"] == 0.2
    assert stats["miss_share_low_contrast"] == 0.2 and stats["miss_share_hand_overlap"] == 0.0
    assert stats["miss_share_unexplained"] == 0.2
    assert stats["detection_rate_gt_hand_fast_motion"] == round(1 / 3, 4)
    assert stats["detection_rate_gt_hand_face_overlap"] == 0.5
    assert stats["detection_rate_gt_hand_low_contrast"] == 0.0
    assert stats["detection_rate_gt_hand_clear"] == round(5 / 6, 4)
    assert "detection_rate_gt_hand_hand_overlap" not in stats  # no visible hand overlapped the other


def test_ground_truth_without_renderer_conditions_still_scores_motion():
    keypoints, gt = _attribution_case()
    del gt["face_box"], gt["hand_contrast"]  # ground truth from an older renderer
    assert set(miss_conditions(gt)) == {"fast_motion", "hand_overlap"}
    stats = accuracy_of([("v", keypoints, gt)])
    assert stats["miss_share_fast_motion"] == 0.4 and stats["miss_share_unexplained"] == 0.6
    assert "miss_share_face_overlap" not in stats
