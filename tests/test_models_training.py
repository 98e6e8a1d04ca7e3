import pytest
import torch

from signkd.models.blocks import downsampled_length
from signkd.models.checkpoint import build_model, load_checkpoint, save_checkpoint
from signkd.models.recognizer import KeypointStudent, MultiModalTeacher
from signkd.training.data import UnknownGlossError, Vocabulary, collate, ctc_min_frames
from signkd.training.kd import HKDLoss, KDConfig, attach_teacher_outputs, distill_kl
from signkd.training.trainer import TrainConfig, ctc_loss, evaluate, set_seed, train
from tests.toy_data import toy_items, toy_vocab


def test_student_shapes_follow_the_x4_downsampling():
    model = KeypointStudent(12, 32, 6).eval()
    batch = collate(toy_items(3))
    out = model(batch)
    assert out.seq_logits.shape[:2] == out.conv_logits.shape[:2]
    assert out.seq_logits.shape[1] == batch["keypoints"].shape[1] // 4
    assert torch.equal(out.lengths, downsampled_length(batch["lengths"]))


@pytest.mark.parametrize("fusion", ["early", "late"])
def test_teacher_fuses_three_modalities(fusion):
    model = MultiModalTeacher(12, 32, 6, fusion=fusion).eval()
    batch = collate(toy_items(2, with_video=True))
    out = model(batch)
    assert out.seq_logits.shape[-1] == 6
    # every stream influences the output
    for key in ("video", "keypoints", "flow"):
        changed = dict(batch)
        changed[key] = batch[key] + 1.0
        assert not torch.allclose(model(changed).seq_logits, out.seq_logits), key


def test_modality_dropout_zeroes_whole_streams_only_in_training():
    from signkd.models.recognizer import _keep_mask

    torch.manual_seed(0)
    keep = _keep_mask(500, 3, 0.6, torch.device("cpu"))
    assert (keep.sum(1) >= 1).all(), "a sample must keep at least one stream"
    assert 0.2 < 1 - keep.mean().item() < 0.6
    model = MultiModalTeacher(12, 32, 6, modality_dropout=0.5)
    batch = collate(toy_items(2, with_video=True))
    model.eval()
    assert torch.equal(model(batch).seq_logits, model(batch).seq_logits)


def test_ctc_min_frames_counts_blanks_between_repeats():
    assert ctc_min_frames([1, 2, 3]) == 3
    assert ctc_min_frames([1, 1, 2]) == 4


def test_vocabulary_rejects_unknown_gloss_with_its_name():
    with pytest.raises(UnknownGlossError, match="HAGEL"):
        Vocabulary(["REGEN"]).encode(("REGEN", "HAGEL"), "vid1")


def test_training_learns_the_toy_task_and_is_reproducible():
    vocab = toy_vocab()
    train_items, dev_items = toy_items(48, seed=1), toy_items(12, seed=2)
    cfg = TrainConfig(epochs=10, lr=1e-2, batch_size=8, seed=0, decoder="greedy")
    set_seed(0)
    model = KeypointStudent(12, 48, vocab.num_classes, dropout=0.0)
    before, _ = evaluate(model, dev_items, vocab, "greedy")
    result = train(model, train_items, dev_items, vocab, cfg)
    after, _ = evaluate(model, dev_items, vocab, "greedy")
    assert after.wer < 40.0 < before.wer
    assert after.wer == pytest.approx(result.best_dev_wer)
    set_seed(0)
    again = KeypointStudent(12, 48, vocab.num_classes, dropout=0.0)
    result2 = train(again, train_items, dev_items, vocab, cfg)
    assert result2.history == result.history


def test_checkpoint_round_trip_is_safetensors(tmp_path):
    config = {"kind": "student", "keypoint_dim": 12, "hidden": 16, "num_classes": 6, "dropout": 0.0, "vocab": []}
    model = build_model(config).eval()
    path = save_checkpoint(model, config, tmp_path / "ckpt")
    assert path.suffix == ".safetensors"
    loaded, cfg = load_checkpoint(tmp_path / "ckpt")
    batch = collate(toy_items(2))
    assert torch.allclose(loaded(batch).seq_logits, model(batch).seq_logits)
    with pytest.raises(FileNotFoundError, match="dvc repro"):
        load_checkpoint(tmp_path / "nothing")


def test_distill_kl_is_zero_for_identical_posteriors_and_positive_otherwise():
    logits = torch.randn(2, 5, 6)
    lengths = torch.tensor([5, 3])
    assert distill_kl(logits, logits, lengths, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    assert distill_kl(logits, torch.randn(2, 5, 6), lengths, 2.0).item() > 0


def test_hkd_loss_trains_adapters_and_matches_ctc_when_alpha_and_weights_are_zero():
    teacher = MultiModalTeacher(12, 32, 6).eval()
    items = toy_items(4, with_video=True)
    attach_teacher_outputs(teacher, items)
    assert "video" not in items[0].tensors and "t_seq_logits" in items[0].tensors
    batch = collate(items)
    student = KeypointStudent(12, 16, 6).eval()
    out = student(batch)
    plain = HKDLoss(16, 32, KDConfig(alpha=0.0, temperature=2.0, level_weights={"frame": 0, "temporal": 0, "sequence": 0}))
    loss, _ = plain(out, batch)
    assert loss.item() == pytest.approx(ctc_loss(out, batch)[0].item(), rel=1e-5)
    full = HKDLoss(16, 32, KDConfig(alpha=0.5, temperature=4.0, level_weights={"frame": 1, "temporal": 1, "sequence": 1}))
    loss, parts = full(student(batch), batch)
    loss.backward()
    assert {"kl", "feat_frame", "feat_temporal", "feat_sequence"} <= set(parts)
    assert all(p.grad is not None for p in full.adapters.parameters())


def test_distillation_training_runs_end_to_end():
    vocab = toy_vocab()
    teacher = MultiModalTeacher(12, 32, vocab.num_classes).eval()
    items = toy_items(16, with_video=True)
    attach_teacher_outputs(teacher, items)
    student = KeypointStudent(12, 16, vocab.num_classes)
    loss = HKDLoss(16, 32, KDConfig(alpha=0.5, temperature=2.0, level_weights={"frame": 0.5, "temporal": 0.5, "sequence": 1}))
    result = train(student, items, toy_items(4, seed=5), vocab, TrainConfig(2, 1e-3, 8, 0, "greedy"), loss)
    assert len(result.history) == 2 and all("train_kl" in h for h in result.history)
