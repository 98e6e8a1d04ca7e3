"""One resolved set of KD settings per run: a number means that number, `tuned` means the tune
stage's best trial, and the chain's assistant distils with exactly what the student does."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import torch
import yaml

from signkd.errors import InputError
from signkd.experiment import teacher_config
from signkd.kd import recipes as distillation
from signkd.kd.loss import attach_teacher_outputs
from signkd.kd.settings import resolve, tuned_keys
from signkd.kd.tuning import search_space, study_name
from signkd.models.recognizer import MultiModalTeacher
from signkd.params import parse_params
from tests.toy_data import toy_items, toy_vocab

ROOT = Path(__file__).resolve().parents[1]
POSE_DIM = 3 * 9


def _params(**kd):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["model"].update({"keypoint_parts": ["pose"], "hidden": 32, "student_hidden": 16, "cnn_width": 4})
    raw["kd"].update({"epochs": 1, "assistant_modalities": ["video", "keypoints"], "teacher_targets": "in_sample"})
    level_weights = kd.pop("level_weights", {})
    raw["kd"].update(kd)
    raw["kd"]["level_weights"].update(level_weights)
    return parse_params(raw)


def _best(tmp_path: Path, **values) -> Path:
    path = tmp_path / "best_params.json"
    path.write_text(json.dumps({**{f"kd.{k}": v for k, v in values.items()}, "dev_wer": 9.0, "trial": 3}))
    return path


def test_numbers_are_used_as_they_are_and_the_tune_file_is_not_read(tmp_path):
    kd = resolve(_params(alpha=0.5, temperature=3.0), tmp_path / "absent.json")
    assert (kd.alpha, kd.temperature, kd.tuned, kd.source) == (0.5, 3.0, (), "params.yaml")


def test_only_the_keys_marked_tuned_come_from_the_best_trial(tmp_path):
    params = _params(alpha=0.5, temperature="tuned", level_weights={"sequence": "tuned"})
    best = _best(tmp_path, temperature=1.7, alpha=0.9, **{"level_weights.sequence": 0.25, "level_weights.frame": 1.5})
    kd = resolve(params, best)
    assert (kd.temperature, kd.alpha) == (1.7, 0.5)  # alpha is a number in params: the file's 0.9 is not used
    assert kd.level_weights == {"frame": 0.5, "temporal": 0.5, "sequence": 0.25}
    assert kd.tuned == ("temperature", "level_weights.sequence") and "trial 3" in kd.source


def test_a_tuned_key_without_a_value_is_a_one_line_error_naming_the_fix(tmp_path):
    params = _params(alpha="tuned")
    with pytest.raises(InputError, match="dvc repro tune") as err:
        resolve(params, tmp_path / "absent.json")
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="kd.alpha"):
        resolve(params, _best(tmp_path, temperature=2.0))


def test_logits_never_searches_or_needs_level_weights(tmp_path):
    params = _params(recipe="logits", level_weights={"frame": "tuned"})
    assert tuned_keys(params) == ()
    assert resolve(params, tmp_path / "absent.json").loss_config().level_weights == {"frame": 0.0, "temporal": 0.0, "sequence": 0.0}


def test_the_removed_use_tuned_key_is_refused_with_the_new_spelling():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["kd"]["use_tuned"] = True
    with pytest.raises(Exception, match="alpha: tuned"):
        parse_params(raw)


def test_a_trial_searches_exactly_the_tuned_keys():
    params = _params(alpha=0.5, temperature="tuned")
    kd = search_space(optuna.trial.FixedTrial({"kd.temperature": 3.5}), params)  # any other suggest would raise
    assert (kd.temperature, kd.alpha, kd.level_weights["sequence"]) == (3.5, 0.5, 1.0)
    assert study_name(params, "f") != study_name(_params(alpha=0.6, temperature="tuned"), "f"), \
        "a search holding alpha at another number is another study"


def test_the_chain_assistant_distils_with_the_runs_settings_not_params(monkeypatch):
    """The assistant once took the tuned temperature but params' alpha and level weights."""
    vocab = toy_vocab()
    torch.manual_seed(0)
    teacher = MultiModalTeacher(POSE_DIM, 32, vocab.num_classes, cnn_width=4).eval()
    train = toy_items(6, feat_dim=POSE_DIM, seed=1, with_video=True)
    attach_teacher_outputs(teacher, train, keep=("keypoints", "video"))
    items = {"train": train, "dev": toy_items(2, feat_dim=POSE_DIM, seed=2, with_video=True)}
    params = _params(recipe="chain", alpha="tuned", temperature="tuned",
                     level_weights={"frame": "tuned", "temporal": "tuned", "sequence": "tuned"})
    kd = resolve(params, _best_in(monkeypatch, temperature=3.3, alpha=0.33,
                                  **{"level_weights.frame": 0.1, "level_weights.temporal": 0.2, "level_weights.sequence": 0.3}))
    seen = []
    real = distillation.HKDLoss

    def recording(student_hidden, teacher_hidden, config, teacher=None):
        seen.append(config)
        return real(student_hidden, teacher_hidden, config, teacher)

    monkeypatch.setattr(distillation, "HKDLoss", recording)
    distillation.distill_student(params, items, vocab, teacher_config(params, POSE_DIM, vocab), kd, on_epoch=None)
    assert len(seen) == 2, "assistant, then student"
    for config in seen:
        assert (config.alpha, config.temperature) == (0.33, 3.3)
        assert config.level_weights == {"frame": 0.1, "temporal": 0.2, "sequence": 0.3}


def _best_in(monkeypatch, **values) -> Path:
    import tempfile

    return _best(Path(tempfile.mkdtemp()), **values)
