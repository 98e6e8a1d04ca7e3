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


def test_a_strided_student_loads_keypoints_thinned_as_recognize_extracts_them(tmp_path):
    from pathlib import Path

    from signkd.data.manifest import Sample
    from signkd.features.keypoints import interpolate_gaps, thinned
    from signkd.io import save_npz
    from signkd.training.data import FeatureSource, Vocabulary, load_items

    arrays = _arrays(t=40)
    arrays["landmarks"][:, :, :2] += np.linspace(0, 0.1, 40, dtype=np.float32)[:, None, None] ** 2  # curved paths
    filled, interpolated = interpolate_gaps(arrays["landmarks"], arrays["mask"], 4)
    stored = arrays | {"landmarks": filled, "interpolated": interpolated, "max_gap": np.asarray(4, np.int32)}
    save_npz(tmp_path / "v.npz", **stored)
    sample = Sample("v", "dev", str(tmp_path), "s1", 40, ("REGEN",))

    def load(stride: int) -> np.ndarray:
        source = FeatureSource(Path(tmp_path), Path(tmp_path), 8, 8, ALL_PARTS, keypoint_stride=stride)
        return load_items([sample], Vocabulary(["REGEN"]), source, ("keypoints",), train=False)[0].inputs()["keypoints"].numpy()

    every, strided = load(1), load(3)
    np.testing.assert_array_equal(every, keypoint_features(stored, ALL_PARTS))
    np.testing.assert_array_equal(strided, keypoint_features(thinned(stored, 3), ALL_PARTS))
    assert not np.allclose(strided[1::3], every[1::3])  # between run frames: interpolated, not detected


def test_only_the_student_carries_its_frame_stride_to_recognize():
    from signkd.experiment import student_config, teacher_config
    from signkd.params import load_params
    from signkd.training.data import Vocabulary

    params = load_params("params.yaml")
    strided = params.model_copy(update={"student": params.student.model_copy(update={"frame_stride": 2})})
    vocab = Vocabulary(["REGEN"])
    assert student_config(strided, 10, vocab).preprocessing.frame_stride == 2
    assert teacher_config(strided, 10, vocab).preprocessing.frame_stride == 1  # the teacher sees every frame
