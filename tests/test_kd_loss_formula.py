"""The distillation loss equals its documented formula (src/signkd/kd/loss.py), per recipe.

    loss = (1 - alpha) * CTC + alpha * T^2 * [KL(teacher || student) on the sequence head + on the conv head]
           + sum over levels of w_level * MSE(adapter(student feature), teacher feature), per-step standardised

computed here by hand in NumPy on small made-up tensors with padding (the padded steps must not
count), with the adapters set to known matrices. `logits` weighs no level; `hkd` (and the chain's
assistant and student, which distil with `hkd`'s loss) weigh each level by its own weight.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from signkd.kd.loss import LEVELS, HKDLoss
from signkd.kd.settings import KDSettings
from signkd.models.recognizer import RecognizerOutput
from signkd.training.trainer import ctc_loss

B, T, T2, H, C, TEACHER_DIM = 2, 6, 3, 5, 4, 3  # the student's frame features are H wide too
LENGTHS_FRAMES, LENGTHS = [6, 4], [3, 2]  # the second utterance is padded


def _settings(recipe: str) -> KDSettings:
    return KDSettings(recipe=recipe, temperature=2.5, alpha=0.6,
                      level_weights={"frame": 0.3, "temporal": 0.7, "sequence": 1.9}, source="test")


def _inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g)

    out = RecognizerOutput(frame_feats=r(B, T, H), conv_feats=r(B, T2, H), seq_feats=r(B, T2, H),
                           conv_logits=r(B, T2, C), seq_logits=r(B, T2, C), lengths=torch.tensor(LENGTHS))
    batch = {"lengths": torch.tensor(LENGTHS_FRAMES), "targets": torch.tensor([1, 2, 3]), "target_lengths": torch.tensor([2, 1]),
             "t_frame": r(B, T, TEACHER_DIM), "t_temporal": r(B, T2, TEACHER_DIM), "t_sequence": r(B, T2, TEACHER_DIM),
             "t_conv_logits": r(B, T2, C), "t_seq_logits": r(B, T2, C)}
    return out, batch


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _kl(student: np.ndarray, teacher: np.ndarray, lengths: list[int], t: float) -> float:
    """Mean over valid steps of KL(teacher_T || student_T), times T^2."""
    terms = []
    for b, n in enumerate(lengths):
        for i in range(n):
            lt, ls = _log_softmax(teacher[b, i] / t), _log_softmax(student[b, i] / t)
            terms.append(float((np.exp(lt) * (lt - ls)).sum()))
    return float(np.mean(terms)) * t * t


def _standardise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)


def _mse(student: np.ndarray, teacher: np.ndarray, lengths: list[int]) -> float:
    terms = [float(((_standardise(student[b, i]) - _standardise(teacher[b, i])) ** 2).mean())
             for b, n in enumerate(lengths) for i in range(n)]
    return float(np.mean(terms))


def _expected(recipe: str, out: RecognizerOutput, batch: dict, adapters: dict[str, np.ndarray], ctc: float) -> float:
    s = _settings(recipe)
    kl = (_kl(out.seq_logits.numpy(), batch["t_seq_logits"].numpy(), LENGTHS, s.temperature)
          + _kl(out.conv_logits.numpy(), batch["t_conv_logits"].numpy(), LENGTHS, s.temperature))
    total = (1 - s.alpha) * ctc + s.alpha * kl
    if recipe == "logits":
        return total
    fields = {"frame": ("frame_feats", LENGTHS_FRAMES), "temporal": ("conv_feats", LENGTHS), "sequence": ("seq_feats", LENGTHS)}
    for level in LEVELS:
        name, lengths = fields[level]
        projected = getattr(out, name).numpy() @ adapters[level].T
        total += s.level_weights[level] * _mse(projected, batch[f"t_{level}"].numpy(), lengths)
    return total


@pytest.mark.parametrize("recipe", ["logits", "hkd"])
def test_the_loss_is_the_documented_formula(recipe):
    out, batch = _inputs()
    loss_fn = HKDLoss(H, TEACHER_DIM, _settings(recipe).loss_config())
    g = np.random.default_rng(7)
    adapters = {}
    for level in LEVELS:
        weight = g.normal(size=(TEACHER_DIM, H)).astype(np.float32)
        with torch.no_grad():
            loss_fn.adapters[level].weight.copy_(torch.from_numpy(weight))
            loss_fn.adapters[level].bias.zero_()
        adapters[level] = weight
    ctc = float(ctc_loss(out, batch)[0])  # the ground-truth term, shared with training without KD
    loss, parts = loss_fn(out, batch)
    assert float(loss) == pytest.approx(_expected(recipe, out, batch, adapters, ctc), rel=1e-5)
    assert ("feat_sequence" in parts) == (recipe == "hkd")


def test_padding_beyond_each_length_does_not_change_the_loss():
    out, batch = _inputs()
    loss_fn = HKDLoss(H, TEACHER_DIM, _settings("hkd").loss_config())
    before = float(loss_fn(out, batch)[0])
    for t in (out.conv_logits, out.seq_logits, out.conv_feats, out.seq_feats, batch["t_seq_logits"], batch["t_temporal"]):
        t[1, LENGTHS[1]:] += 100.0
    out.frame_feats[1, LENGTHS_FRAMES[1]:] -= 50.0
    batch["t_frame"][1, LENGTHS_FRAMES[1]:] += 50.0
    assert float(loss_fn(out, batch)[0]) == pytest.approx(before, rel=1e-6)
