"""Out-of-fold teacher targets: every training video's targets come from a teacher that did not
train on it, and they round-trip through the stage's file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

import signkd.kd.targets as tt
from signkd.params import parse_params
from tests.toy_data import student_spec, toy_items, toy_vocab

ROOT = Path(__file__).resolve().parents[1]


def _params():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["teacher"].update({"epochs": 1})
    return parse_params(raw)


def test_each_fold_is_targeted_by_a_teacher_that_never_saw_it(monkeypatch):
    vocab = toy_vocab()
    train_items, dev_items = toy_items(12, seed=1), toy_items(3, seed=2)
    trained_on: list[set[str]] = []
    real_train = tt.train

    def spy(model, items, *args, **kwargs):
        trained_on.append({it.id for it in items})
        return real_train(model, items, *args, **kwargs)

    attached: list[set[str]] = []
    real_attach = tt.attach_teacher_outputs

    def attach_spy(model, items, **kwargs):
        attached.append({it.id for it in items})
        return real_attach(model, items, **kwargs)

    monkeypatch.setattr(tt, "train", spy)
    monkeypatch.setattr(tt, "attach_teacher_outputs", attach_spy)
    config = student_spec(vocab.glosses, 12, 16, dropout=0.0)
    wers = tt.out_of_fold_targets(_params(), vocab, train_items, dev_items, config, folds=3)
    assert len(wers) == len(trained_on) == len(attached) == 3
    for seen, targeted in zip(trained_on, attached):
        assert targeted and not (seen & targeted), "a fold's targets must come from a teacher that did not see it"
    assert set().union(*attached) == {it.id for it in train_items}
    assert all("t_seq_logits" in it.tensors and "keypoints" in it.tensors for it in train_items)


def test_folds_are_balanced_and_fixed_by_the_seed():
    items = toy_items(10)
    a, b = tt.fold_of(items, 3, seed=5), tt.fold_of(items, 3, seed=5)
    assert a.tolist() == b.tolist() and sorted(a.tolist()) == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_targets_round_trip_and_a_missing_video_is_named(tmp_path):
    items = toy_items(3)
    for it in items:
        n = it.num_frames // 4
        it.tensors.update({"t_frame": torch.randn(it.num_frames, 4), "t_temporal": torch.randn(n, 4),
                           "t_sequence": torch.randn(n, 4), "t_conv_logits": torch.randn(n, 6), "t_seq_logits": torch.randn(n, 6)})
    tt.save_targets(items, tmp_path)
    fresh = toy_items(3)
    tt.load_targets(fresh, tmp_path, keep=("keypoints",))
    assert not any(k.startswith("t_") for it in fresh for k in it.tensors), "targets are read per batch, not held"
    assert torch.equal(fresh[1].teacher_outputs()["t_seq_logits"], items[1].tensors["t_seq_logits"])
    assert torch.equal(fresh[1].inputs()["t_frame"], items[1].tensors["t_frame"])
    probs = torch.cat([it.tensors["t_seq_logits"] for it in items]).softmax(-1)  # every step of every video at once
    expected = {"target_confidence": round(float(probs.max(-1).values.mean()), 4),
                "target_entropy": round(float(-(probs * probs.log()).sum(-1).mean()), 4)}
    assert tt.target_stats(fresh) == pytest.approx(expected, abs=2e-4)
    other = toy_items(4)
    with pytest.raises(FileNotFoundError, match="toy003"):
        tt.load_targets(other, tmp_path, keep=("keypoints",))
