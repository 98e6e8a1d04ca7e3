"""Augmentation keeps the modalities of one video consistent with each other."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from signkd.training.augment import AugmentConfig, augment_item
from signkd.training.data import Item


def _item(frames: int = 40) -> Item:
    video = np.zeros((frames, 3, 32, 26), np.uint8)
    video[:, :, 8, 20] = 255  # a bright dot at x=20, y=8
    flow = np.zeros((frames, 2, 32, 26), np.float32)
    flow[:, 0] = 1.0  # everything moves right by one unit
    kp = np.zeros((frames, 6), np.float32)  # two joints: (x, y) pairs then the mask
    kp[:, 0:2] = [1.0, 0.0]  # joint 0 seen, one shoulder width to the right
    kp[:, 4] = 1.0
    tensors = {"video": torch.from_numpy(video), "flow": torch.from_numpy(flow), "keypoints": torch.from_numpy(kp),
               "t_seq_logits": torch.zeros(frames // 4, 5)}
    return Item("v", ("A", "B"), [1, 2], tensors)


def test_rotation_moves_pixels_flow_and_landmarks_the_same_way():
    item = _item()
    out = augment_item(item, AugmentConfig(rotate=90.0), np.random.default_rng(0), temporal=False)
    angle = None
    # find the angle that was drawn from where the dot went (rotation about the image centre)
    y, x = np.unravel_index(out.tensors["video"][0, 0].numpy().argmax(), (32, 26))
    cx, cy = 13.0, 16.0
    angle = math.atan2(-(y - cy), x - cx) - math.atan2(-(8 - cy), 20 - cx)  # counter-clockwise, y up
    kx, ky = out.tensors["keypoints"][0, 0:2].tolist()
    assert math.atan2(-ky, kx) == pytest.approx(angle, abs=0.25)  # landmark turned like the dot
    fx, fy = out.tensors["flow"][0, :, 16, 13].tolist()
    assert math.atan2(-fy, fx) == pytest.approx(angle, abs=0.25)  # and so did the motion
    assert out.tensors["keypoints"][0, 2:4].tolist() == [0.0, 0.0]  # an unseen joint stays unseen
    assert torch.equal(item.tensors["keypoints"][0, 0:2], torch.tensor([1.0, 0.0])), "the original is untouched"


def test_speed_change_resamples_every_input_but_not_teacher_targets():
    item = _item(40)
    out = augment_item(item, AugmentConfig(speed=0.5), np.random.default_rng(3))
    t = out.tensors["video"].shape[0]
    assert t != 40 and out.tensors["flow"].shape[0] == out.tensors["keypoints"].shape[0] == t
    assert out.tensors["t_seq_logits"].shape[0] == 10
    kept = augment_item(item, AugmentConfig(speed=0.5), np.random.default_rng(3), temporal=False)
    assert kept.tensors["video"].shape[0] == 40


def test_speed_change_never_makes_a_video_too_short_for_ctc():
    item = _item(12)  # 12 frames -> 3 steps for 2 labels: any speed-up would break CTC
    for seed in range(20):
        out = augment_item(item, AugmentConfig(speed=0.5), np.random.default_rng(seed))
        assert out.tensors["video"].shape[0] // 4 >= 2
