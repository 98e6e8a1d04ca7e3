"""Overlay GIF: frames chosen, keypoints and ground truth drawn, written atomically."""

from __future__ import annotations

import cv2
import imageio.v3 as iio
import numpy as np
import pytest

from signkd.data.render import POSE_NAMES as GT_POSE_NAMES
from signkd.features import keypoints as kp
from signkd.features.overlay import COLOURS, GT_COLOUR, write_overlay_gif
from signkd.io import save_npz

H, W, T = 40, 30, 6


def _inputs(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for t in range(T):
        cv2.imwrite(str(frames / f"{t:03d}.png"), np.full((H, W, 3), 60 + 10 * t, np.uint8))  # GIF merges equal frames
    landmarks = np.zeros((T, kp.NUM_JOINTS, 3), np.float32)
    mask = np.zeros((T, kp.NUM_JOINTS), bool)
    hand = (np.array([(i % 5 * 2, i // 5 * 2) for i in range(21)], np.float32) + (8, 10) + 0.5) / (W, H)
    landmarks[:, kp.LEFT_HAND, :2] = hand
    mask[:, kp.LEFT_HAND] = True
    save_npz(tmp_path / "kp.npz", landmarks=landmarks, mask=mask, interpolated=np.zeros_like(mask),
             frame_size=np.array([H, W], np.int32))
    pose = np.tile(np.linspace(2, 25, len(GT_POSE_NAMES), dtype=np.float32)[:, None], (1, 2))
    save_npz(tmp_path / "gt.npz", hand_joints=np.full((T, 2, 21, 2), 20.0, np.float32),
             hand_joint_visible=np.ones((T, 2, 21), bool), hand_visible=np.ones((T, 2), bool),
             pose_joints=np.repeat(pose[None], T, axis=0), pose_visible=np.ones((T, len(GT_POSE_NAMES)), bool))
    return frames


def _share_near(images: np.ndarray, bgr) -> float:
    rgb = np.array(bgr[::-1], np.int16)
    return float((np.abs(images[..., :3].astype(np.int16) - rgb).max(axis=-1) < 40).mean())


def test_overlay_gif_draws_keypoints_and_ground_truth(tmp_path):
    frames = _inputs(tmp_path)
    out = tmp_path / "report" / "overlay.gif"
    assert write_overlay_gif(frames, tmp_path / "kp.npz", out, ground_truth_npz=tmp_path / "gt.npz", max_frames=3) == 3
    images = iio.imread(out, index=None)
    assert images.shape[:3] == (3, 2 * H, 2 * W)
    assert _share_near(images, COLOURS["left_hand"]) > 0.005 and _share_near(images, GT_COLOUR) > 0.005
    assert not list(out.parent.glob("*.tmp"))

    write_overlay_gif(frames, tmp_path / "kp.npz", out, max_frames=50, scale=1)
    plain = iio.imread(out, index=None)
    assert plain.shape[:3] == (T, H, W) and _share_near(plain, GT_COLOUR) == 0.0


def test_overlay_refuses_frames_that_do_not_match_the_keypoints(tmp_path):
    frames = _inputs(tmp_path)
    (frames / "005.png").unlink()
    with pytest.raises(ValueError, match="fewer frames"):
        write_overlay_gif(frames, tmp_path / "kp.npz", tmp_path / "o.gif")
    cv2.imwrite(str(frames / "005.png"), np.zeros((H, W, 3), np.uint8))
    cv2.imwrite(str(frames / "006.png"), np.zeros((H, W, 3), np.uint8))
    with pytest.raises(ValueError, match="more frames"):
        write_overlay_gif(frames, tmp_path / "kp.npz", tmp_path / "o.gif")
    assert not (tmp_path / "o.gif").exists()
