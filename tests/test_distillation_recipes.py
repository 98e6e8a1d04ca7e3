"""The three distillation recipes are what their names say (params `kd.recipe`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from signkd.experiment import teacher_config
from signkd.kd.loss import attach_teacher_outputs
from signkd.kd.recipes import distill_student
from signkd.kd.settings import resolve
from signkd.models.recognizer import MultiModalTeacher
from signkd.params import parse_params
from tests.toy_data import toy_items, toy_vocab

ROOT = Path(__file__).resolve().parents[1]
POSE_DIM = 3 * 9  # model.keypoint_parts: [pose]


def _params(recipe: str):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["model"].update({"keypoint_parts": ["pose"], "hidden": 32, "student_hidden": 16, "cnn_width": 4})
    raw["kd"].update({"recipe": recipe, "epochs": 2, "assistant_modalities": ["video", "keypoints"], "teacher_targets": "in_sample"})
    return parse_params(raw)


@pytest.fixture(scope="module")
def teacher_and_items():
    vocab = toy_vocab()
    torch.manual_seed(0)
    teacher = MultiModalTeacher(POSE_DIM, 32, vocab.num_classes, cnn_width=4).eval()
    return vocab, teacher, teacher_config(_params("hkd"), POSE_DIM, vocab)


def _items(teacher, keep):
    train = toy_items(12, feat_dim=POSE_DIM, seed=1, with_video=True)
    attach_teacher_outputs(teacher, train, keep=keep)
    return {"train": train, "dev": toy_items(4, feat_dim=POSE_DIM, seed=2, with_video=True)}


@pytest.mark.parametrize("recipe, feature_losses", [("logits", False), ("hkd", True)])
def test_logits_recipe_has_no_feature_losses_and_hkd_has_all_three(teacher_and_items, recipe, feature_losses):
    vocab, teacher, teacher_cfg = teacher_and_items
    out = distill_student(_params(recipe), _items(teacher, ("keypoints",)), vocab, teacher_cfg, resolve(_params(recipe)), on_epoch=None)
    keys = set(out.result.history[-1])
    assert {"train_kl", "train_ctc"} <= keys
    assert {"train_feat_frame", "train_feat_temporal", "train_feat_sequence"} <= keys if feature_losses else not any(
        k.startswith("train_feat") for k in keys)
    assert out.assistant_dev_wer is None


def test_chain_distils_through_an_assistant_and_leaves_the_teacher_targets(teacher_and_items):
    vocab, teacher, teacher_cfg = teacher_and_items
    items = _items(teacher, ("keypoints", "video"))
    before = items["train"][0].tensors["t_seq_logits"].clone()
    out = distill_student(_params("chain"), items, vocab, teacher_cfg, resolve(_params("chain")), on_epoch=None)
    assert out.assistant_dev_wer is not None
    assert torch.equal(items["train"][0].tensors["t_seq_logits"], before), "a second call must see the teacher again"
    assert out.config.architecture.kind == "student" and out.config.architecture.inputs == ("keypoints",)
    # same seed, same student: only the targets differ, so the weights must too
    direct = distill_student(_params("hkd"), _items(teacher, ("keypoints", "video")), vocab, teacher_cfg, resolve(_params("hkd")),
                             on_epoch=None)
    first = next(iter(out.student.state_dict()))
    assert not torch.equal(out.student.state_dict()[first], direct.student.state_dict()[first])


def _online_params(recipe: str = "hkd"):
    params = _params(recipe)
    return params.model_copy(update={"kd": params.kd.model_copy(update={"teacher_targets": "online"})})


def test_an_online_teacher_gives_the_loss_of_stored_targets_on_the_same_inputs(teacher_and_items):
    from signkd.kd.loss import HKDLoss, KDConfig
    from signkd.models.recognizer import Student
    from signkd.training.data import collate

    vocab, teacher, _ = teacher_and_items
    items = toy_items(4, feat_dim=POSE_DIM, seed=3, with_video=True)
    stored = [type(it)(**{**it.__dict__, "tensors": dict(it.tensors)}) for it in items]
    attach_teacher_outputs(teacher, stored, keep=("keypoints",))
    torch.manual_seed(0)
    student = Student("keypoints", POSE_DIM, 16, vocab.num_classes).eval()
    cfg = KDConfig(alpha=0.5, temperature=2.0, level_weights={"frame": 1.0, "temporal": 1.0, "sequence": 1.0})
    offline = HKDLoss(16, 32, cfg)
    online = HKDLoss(16, 32, cfg, teacher)
    online.load_state_dict(offline.state_dict())  # the same adapters
    assert not any(p is q for p in online.parameters() for q in teacher.parameters()), "the optimiser must not see the teacher"
    live, kept = collate(items), collate(stored)
    loss_online, parts_online = online(student(live), live)
    loss_offline, parts_offline = offline(student(kept), kept)
    assert parts_online["kl"] > 0
    assert torch.allclose(loss_online, loss_offline, atol=1e-5), (parts_online, parts_offline)


@pytest.mark.parametrize("recipe", ["hkd", "chain"])
def test_online_distillation_leaves_the_teacher_untouched(teacher_and_items, recipe):
    vocab, teacher, teacher_cfg = teacher_and_items
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    items = {"train": toy_items(12, feat_dim=POSE_DIM, seed=1, with_video=True),
             "dev": toy_items(4, feat_dim=POSE_DIM, seed=2, with_video=True)}
    with pytest.raises(ValueError, match="online"):
        distill_student(_online_params(recipe), items, vocab, teacher_cfg, resolve(_online_params(recipe)), on_epoch=None)
    out = distill_student(_online_params(recipe), items, vocab, teacher_cfg, resolve(_online_params(recipe)), on_epoch=None,
                          teacher=teacher)
    assert out.result.history[-1]["train_kl"] > 0
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert not any(k.startswith("t_") for it in items["train"] for k in it.tensors), "targets are made per batch, not stored"
