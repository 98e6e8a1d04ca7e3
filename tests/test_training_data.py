import numpy as np
import pytest

from signkd.features.keypoints import LEFT_HAND, NUM_JOINTS
from signkd.training.data import ALL_PARTS, keypoint_features


def _arrays(t=6):
    rng = np.random.default_rng(0)
    landmarks = rng.uniform(0.2, 0.8, size=(t, NUM_JOINTS, 3)).astype(np.float32)
    mask = np.ones((t, NUM_JOINTS), bool)
    mask[2, LEFT_HAND] = False
    return {"landmarks": landmarks, "mask": mask, "frame_size": np.array([260, 210], np.int32)}


def test_features_cover_the_chosen_parts_only():
    arrays = _arrays()
    full = keypoint_features(arrays, ALL_PARTS)
    hand = keypoint_features(arrays, ("left_hand",))
    assert full.shape == (6, 3 * NUM_JOINTS) and hand.shape == (6, 3 * 21)
    assert np.isfinite(full).all()
    # the mask columns follow the coordinates; the undetected frame is zero and flagged
    assert (hand[2, :42] == 0).all() and (hand[2, 42:] == 0).all() and (hand[3, 42:] == 1).all()


def test_unknown_or_empty_parts_are_rejected():
    with pytest.raises(ValueError, match="subset"):
        keypoint_features(_arrays(), ("tail",))
    with pytest.raises(ValueError, match="subset"):
        keypoint_features(_arrays(), ())
