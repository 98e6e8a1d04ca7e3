"""Padding independence: an utterance gives the same output alone as in a padded batch.

Training evaluates padded batches; `quantize` and `recognize` run one unpadded utterance. Any
block that lets padding leak in (an unpacked backward LSTM, BatchNorm statistics over padded
steps, a convolution reading padded frames, a non-zero pad value) breaks these tests.
"""

from __future__ import annotations

import pytest
import torch

from signkd.models.blocks import MaskedBatchNorm1d, reverse_valid, valid_mask
from signkd.models.recognizer import FUSIONS, KeypointStudent, MultiModalTeacher, VideoStudent
from signkd.training.data import collate
from tests.toy_data import toy_items

FIELDS = ("frame_feats", "conv_feats", "seq_feats", "conv_logits", "seq_logits")


FACTORIES = {
    "student-keypoints": lambda: KeypointStudent(12, 32, 6, dropout=0.0),
    "student-video": lambda: VideoStudent(32, 6, dropout=0.0, cnn_width=8),
    **{f"teacher-{f}": (lambda f=f: MultiModalTeacher(12, 32, 6, fusion=f, dropout=0.0, cnn_width=8)) for f in FUSIONS},
    "single-stream-flow": lambda: MultiModalTeacher(12, 32, 6, dropout=0.0, cnn_width=8, modalities=("flow",)),
}


def _models():
    for name, factory in FACTORIES.items():
        torch.manual_seed(0)
        yield name, factory()


def _short_and_long():
    items = toy_items(12, with_video=True, seed=3)
    items.sort(key=lambda it: it.num_frames)
    short, longest = items[0], items[-1]
    assert longest.num_frames - short.num_frames >= 8, "the test needs real padding"
    return short, longest


def _assert_same_valid_steps(alone, batched, index: int):
    n = int(alone.lengths[0])
    assert int(batched.lengths[index]) == n
    for name in FIELDS:
        a, b = getattr(alone, name)[0], getattr(batched, name)[index]
        steps = a.shape[0] if name == "frame_feats" else n
        torch.testing.assert_close(b[:steps], a[:steps], atol=1e-5, rtol=1e-4, msg=name)
    for stream, logits in alone.stream_logits.items():
        torch.testing.assert_close(batched.stream_logits[stream][index, :n], logits[0, :n], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name_model", list(_models()), ids=lambda nm: nm[0])
def test_eval_output_is_the_same_alone_and_in_a_padded_batch(name_model):
    _, model = name_model
    model.eval()
    short, longest = _short_and_long()
    with torch.no_grad():
        alone = model(collate([short]))
        batched = model(collate([longest, short]))
    _assert_same_valid_steps(alone, batched, 1)


def _pad_more(batch: dict[str, torch.Tensor], extra: int) -> dict[str, torch.Tensor]:
    """The same batch with `extra` more padded frames at the end of every sequence."""
    out = dict(batch)
    for key in ("keypoints", "video", "flow"):
        x = batch[key]
        out[key] = torch.cat([x, x.new_zeros((x.shape[0], extra, *x.shape[2:]))], dim=1)
    return out


@pytest.mark.parametrize("name_model", list(_models()), ids=lambda nm: nm[0])
def test_training_step_ignores_padding(name_model):
    """In train mode BatchNorm uses batch statistics: extra padding must not change the outputs,
    the gradients or the running statistics."""
    name, model = name_model
    short, longest = _short_and_long()
    batch = collate([longest, short])
    results = []
    for b in (batch, _pad_more(batch, 11)):
        torch.manual_seed(0)
        m = FACTORIES[name]()
        m.load_state_dict(model.state_dict())
        m.train()
        out = m(b)
        mask = valid_mask(out.seq_logits, out.lengths)[:, :, None]
        (out.seq_logits * mask).sum().backward()
        grads = {k: p.grad.clone() for k, p in m.named_parameters() if p.grad is not None}
        stats = {k: v.clone() for k, v in m.state_dict().items() if "running" in k}
        results.append((out, grads, stats))
    (out_a, grads_a, stats_a), (out_b, grads_b, stats_b) = results
    for i in range(2):
        n = int(out_a.lengths[i])
        torch.testing.assert_close(out_b.seq_logits[i, :n], out_a.seq_logits[i, :n], atol=1e-5, rtol=1e-4)
    assert stats_a, "the model has BatchNorm layers whose statistics must ignore padding"
    for k in stats_a:
        torch.testing.assert_close(stats_b[k], stats_a[k], atol=1e-5, rtol=1e-4, msg=k)
    for k in grads_a:
        torch.testing.assert_close(grads_b[k], grads_a[k], atol=1e-4, rtol=1e-3, msg=k)


def test_reverse_valid_reverses_only_the_valid_part():
    x = torch.arange(10.0).view(2, 5, 1)
    out = reverse_valid(x, torch.tensor([3, 5]))[..., 0]
    assert out.tolist() == [[2.0, 1.0, 0.0, 3.0, 4.0], [9.0, 8.0, 7.0, 6.0, 5.0]]


def test_masked_batchnorm_statistics_come_from_valid_steps_only():
    norm = MaskedBatchNorm1d(1, momentum=1.0).train()
    x = torch.tensor([[[1.0, 3.0, 100.0]]])  # the third step is padding
    y = norm(x, torch.tensor([[True, True, False]]))
    assert norm.running_mean.item() == pytest.approx(2.0)
    assert norm.running_var.item() == pytest.approx(2.0)  # unbiased, as nn.BatchNorm1d keeps it
    assert y[0, 0, :2].tolist() == pytest.approx([-1.0, 1.0], abs=1e-3)
