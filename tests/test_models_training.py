import math

import pytest
import torch

from signkd.inference import DecodeConfig
from signkd.kd.loss import HKDLoss, KDConfig, attach_teacher_outputs, distill_kl
from signkd.models.blocks import downsampled_length
from signkd.models.checkpoint import build_model, load_checkpoint, save_checkpoint
from signkd.models.recognizer import FUSIONS, KeypointStudent, MultiModalTeacher
from signkd.training.data import UnknownGlossError, Vocabulary, collate, ctc_min_frames
from signkd.training.trainer import TrainConfig, ctc_loss, evaluate, set_seed, train
from tests.toy_data import GLOSSES, student_spec, toy_items, toy_vocab


def test_student_shapes_follow_the_x4_downsampling():
    model = KeypointStudent(12, 32, 6).eval()
    batch = collate(toy_items(3))
    out = model(batch)
    assert out.seq_logits.shape[:2] == out.conv_logits.shape[:2]
    assert out.seq_logits.shape[1] == batch["keypoints"].shape[1] // 4
    assert torch.equal(out.lengths, downsampled_length(batch["lengths"]))


@pytest.mark.parametrize("fusion", FUSIONS)
def test_teacher_fuses_three_modalities_and_trains_a_head_per_stream(fusion):
    model = MultiModalTeacher(12, 32, 6, fusion=fusion).eval()
    batch = collate(toy_items(2, with_video=True))
    out = model(batch)
    assert out.seq_logits.shape[-1] == 6
    assert set(out.stream_logits) == {"video", "keypoints", "flow"}
    # a stream's own head sees only its stream, except through lateral connections, which
    # exist to mix them
    changed = model({**batch, "flow": batch["flow"] + 1.0})
    same = torch.allclose(changed.stream_logits["video"], out.stream_logits["video"])
    assert same == (fusion != "lateral")
    assert not torch.allclose(changed.stream_logits["flow"], out.stream_logits["flow"])
    loss, parts = ctc_loss(out, batch)
    assert {"ctc_video", "ctc_keypoints", "ctc_flow"} <= set(parts)
    assert loss.item() == pytest.approx(sum(parts.values()), rel=1e-5)
    # every stream influences the output
    for key in ("video", "keypoints", "flow"):
        changed = dict(batch)
        changed[key] = batch[key] + 1.0
        assert not torch.allclose(model(changed).seq_logits, out.seq_logits), key


def test_modality_dropout_zeroes_whole_streams_only_in_training():
    """Per video and stream: the whole stream (every frame, every feature) is zeroed or kept and
    rescaled by 1 / (1 - p) (inverted dropout: the expected input is unchanged); never all streams
    of one video; about p of the streams dropped; nothing happens in eval mode."""
    p = 0.5
    model = MultiModalTeacher(12, 32, 6, modality_dropout=p)
    feats = {m: torch.ones(400, 7, 5) for m in model.modalities}
    model.train()
    torch.manual_seed(3)
    dropped = model._drop_modalities(feats)
    per_stream = torch.stack([dropped[m] for m in model.modalities], dim=1)  # [B, S, T, D]
    flat = per_stream.flatten(2)
    kept = flat[:, :, 0] > 0
    assert torch.equal(flat, kept[:, :, None].float().expand_as(flat) / (1 - p)), "whole streams, rescaled"
    assert kept.any(dim=1).all(), "a video keeps at least one stream"
    assert 0.3 < 1 - kept.float().mean().item() < 0.55  # p, less the re-kept all-dropped videos (p^3 of them)
    model.eval()
    assert all(torch.equal(model._drop_modalities(feats)[m], feats[m]) for m in model.modalities)
    batch = collate(toy_items(2, with_video=True))
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
    cfg = TrainConfig(epochs=10, lr=1e-2, batch_size=8, seed=0, decoding=DecodeConfig("greedy"))
    set_seed(0)
    model = KeypointStudent(12, 48, vocab.num_classes, dropout=0.0)
    before, _ = evaluate(model, dev_items, vocab, DecodeConfig("greedy"))
    result = train(model, train_items, dev_items, vocab, cfg)
    after, _ = evaluate(model, dev_items, vocab, DecodeConfig("greedy"))
    assert after.wer < 40.0 < before.wer
    assert after.wer == pytest.approx(result.best_dev_wer)
    set_seed(0)
    again = KeypointStudent(12, 48, vocab.num_classes, dropout=0.0)
    result2 = train(again, train_items, dev_items, vocab, cfg)
    assert result2.history == result.history


def test_checkpoint_round_trip_is_safetensors(tmp_path):
    config = student_spec(GLOSSES, 12, 16, dropout=0.0)
    model = build_model(config).eval()
    path = save_checkpoint(model, config, tmp_path / "ckpt")
    assert path.suffix == ".safetensors"
    loaded, cfg = load_checkpoint(tmp_path / "ckpt")
    batch = collate(toy_items(2))
    assert torch.allclose(loaded(batch).seq_logits, model(batch).seq_logits)
    with pytest.raises(FileNotFoundError, match="dvc repro"):
        load_checkpoint(tmp_path / "nothing")


def test_distill_kl_is_teacher_to_student_times_t_squared_over_valid_frames():
    """Hand-computed: two classes, T = 2. KL(p_t || p_s) with p_t = softmax(t / T), times T^2;
    the second frame is padding (length 1) and must not count."""
    t_logits = torch.tensor([[[2.0, 0.0], [9.0, -9.0]]])
    s_logits = torch.tensor([[[0.0, 2.0], [-9.0, 9.0]]])
    p_t = [math.exp(1) / (math.exp(1) + 1), 1 / (math.exp(1) + 1)]  # softmax([2, 0] / 2)
    p_s = [p_t[1], p_t[0]]
    expected = 4.0 * sum(a * math.log(a / b) for a, b in zip(p_t, p_s))
    got = distill_kl(s_logits, t_logits, torch.tensor([1]), 2.0).item()
    assert got == pytest.approx(expected, rel=1e-5)
    # the direction matters once the posteriors are not mirror images
    t2 = torch.tensor([[[3.0, 0.0, 0.0]]])
    s2 = torch.tensor([[[0.0, 0.0, 0.0]]])
    pt = torch.softmax(t2[0, 0], -1).tolist()
    forward = sum(a * math.log(a / (1 / 3)) for a in pt)
    assert distill_kl(s2, t2, torch.tensor([1]), 1.0).item() == pytest.approx(forward, rel=1e-5)
    assert distill_kl(s2, s2, torch.tensor([1]), 1.0).item() == pytest.approx(0.0, abs=1e-7)


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


def test_a_student_learns_the_task_from_the_teacher_alone():
    """alpha = 1: no ground-truth CTC at all, only the teacher's posteriors. A student can then
    learn the task only if the KL term pulls it toward the teacher (a wrong sign, a wrong
    direction of the teacher targets or dropped targets leave it near chance)."""
    vocab = toy_vocab()
    train_items, dev_items = toy_items(48, seed=1), toy_items(12, seed=2)
    set_seed(0)
    teacher = KeypointStudent(12, 48, vocab.num_classes, dropout=0.0)
    train(teacher, train_items, dev_items, vocab, TrainConfig(10, 1e-2, 8, 0, DecodeConfig("greedy")))
    teacher_wer, _ = evaluate(teacher, dev_items, vocab, DecodeConfig("greedy"))
    assert teacher_wer.wer < 30.0
    attach_teacher_outputs(teacher.eval(), train_items)
    set_seed(1)
    student = KeypointStudent(12, 32, vocab.num_classes, dropout=0.0)
    before, _ = evaluate(student, dev_items, vocab, DecodeConfig("greedy"))
    kd_only = HKDLoss(32, 48, KDConfig(alpha=1.0, temperature=2.0, level_weights={"frame": 0, "temporal": 0, "sequence": 0}))
    result = train(student, train_items, dev_items, vocab, TrainConfig(10, 1e-2, 8, 0, DecodeConfig("greedy")), kd_only)
    after, _ = evaluate(student, dev_items, vocab, DecodeConfig("greedy"))
    assert before.wer > 60.0 and after.wer < 40.0
    assert result.history[-1]["train_kl"] < 0.5 * result.history[0]["train_kl"]
