"""The three distillation recipes are what their names say (params `kd.recipe`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from signkd.distillation import distill_student
from signkd.models.recognizer import MultiModalTeacher
from signkd.params import parse_params
from signkd.training.kd import attach_teacher_outputs
from tests.toy_data import toy_items, toy_vocab

ROOT = Path(__file__).resolve().parents[1]
POSE_DIM = 3 * 9  # model.keypoint_parts: [pose]


def _params(recipe: str):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["model"].update({"keypoint_parts": ["pose"], "hidden": 32, "student_hidden": 16, "cnn_width": 4})
    raw["kd"].update({"recipe": recipe, "epochs": 2, "assistant_modalities": ["video", "keypoints"]})
    return parse_params(raw)


@pytest.fixture(scope="module")
def teacher_and_items():
    vocab = toy_vocab()
    torch.manual_seed(0)
    teacher = MultiModalTeacher(POSE_DIM, 32, vocab.num_classes, cnn_width=4).eval()
    return vocab, teacher, {"hidden": 32, "modalities": ["video", "keypoints", "flow"]}


def _items(teacher, keep):
    train = toy_items(12, feat_dim=POSE_DIM, seed=1, with_video=True)
    attach_teacher_outputs(teacher, train, keep=keep)
    return {"train": train, "dev": toy_items(4, feat_dim=POSE_DIM, seed=2, with_video=True)}


@pytest.mark.parametrize("recipe, feature_losses", [("logits", False), ("hkd", True)])
def test_logits_recipe_has_no_feature_losses_and_hkd_has_all_three(teacher_and_items, recipe, feature_losses):
    vocab, teacher, teacher_cfg = teacher_and_items
    out = distill_student(_params(recipe), _items(teacher, ("keypoints",)), vocab, teacher_cfg, 2.0, on_epoch=None)
    keys = set(out.result.history[-1])
    assert {"train_kl", "train_ctc"} <= keys
    assert {"train_feat_frame", "train_feat_temporal", "train_feat_sequence"} <= keys if feature_losses else not any(
        k.startswith("train_feat") for k in keys)
    assert out.assistant_dev_wer is None


def test_chain_distils_through_an_assistant_and_leaves_the_teacher_targets(teacher_and_items):
    vocab, teacher, teacher_cfg = teacher_and_items
    items = _items(teacher, ("keypoints", "video"))
    before = items["train"][0].tensors["t_seq_logits"].clone()
    out = distill_student(_params("chain"), items, vocab, teacher_cfg, 2.0, on_epoch=None)
    assert out.assistant_dev_wer is not None
    assert torch.equal(items["train"][0].tensors["t_seq_logits"], before), "a second call must see the teacher again"
    assert out.config["modality"] == "keypoints"
    # same seed, same student: only the targets differ, so the weights must too
    direct = distill_student(_params("hkd"), _items(teacher, ("keypoints", "video")), vocab, teacher_cfg, 2.0, on_epoch=None)
    first = next(iter(out.student.state_dict()))
    assert not torch.equal(out.student.state_dict()[first], direct.student.state_dict()[first])
