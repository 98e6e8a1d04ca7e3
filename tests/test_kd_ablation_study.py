"""The distillation ablation runs every recipe end to end with the default online teacher."""

from __future__ import annotations

import json

import pytest

from signkd.params import load_params
from signkd.studies import kd_ablation
from signkd.studies.common import record_path
from tests.tiny_workspace import custom_workspace


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return custom_workspace(tmp_path_factory.mktemp("kd") / "ws", ("prepare", "extract_keypoints", "extract_flow"))


def test_the_ablation_distils_every_recipe_from_the_online_teacher(workspace, monkeypatch):
    import torch

    ws = workspace
    monkeypatch.chdir(ws)
    params = load_params("params.yaml")
    assert params.kd.teacher_targets == "online"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        report = kd_ablation.run(params, [1], students=("keypoints",))
    finally:
        torch.set_num_threads(threads)
    block = report["keypoints"]
    assert {"no_kd", "logits", "hkd", "chain", "teacher"} <= set(block)
    assert set(block["gap_recovered"]) == {"logits", "hkd", "chain"}
    assert set(block["paired"]) == {"hkd_vs_logits", "chain_vs_hkd", "hkd_vs_no_kd", "logits_vs_no_kd", "chain_vs_no_kd"}
    for name, pair in block["paired"].items():  # one seed: the paired mean is that seed's WER difference
        first, second = name.split("_vs_")
        assert pair["mean"] == round(block[second]["seed_wers"][0] - block[first]["seed_wers"][0], 3), name
    assert report["settings"]["teacher_targets"] == "online"
    assert not (ws / kd_ablation.STUDY_DIR / "targets-seed1").exists(), "online: no stored targets"
    assert (ws / kd_ablation.STUDY_DIR / "assistant-seed1" / "model.safetensors").is_file()


def test_the_tune_study_searches_then_compares_with_params_numbers_on_every_seed(workspace, monkeypatch):
    """The search's best trial becomes studies/kd_tuned.json; the defaults arm is the ablation's own
    HKD run (one cache), the tuned arm distils with the best trial's values; paired over seeds."""
    import torch

    from signkd.studies import tune

    monkeypatch.chdir(workspace)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        report = tune.run(load_params("params.yaml"), [1, 2], trials=3)
    finally:
        torch.set_num_threads(threads)
    best = json.loads(tune.TUNED_FILE.read_text())
    keys = {"kd.temperature", "kd.alpha", "kd.level_weights.frame", "kd.level_weights.temporal", "kd.level_weights.sequence"}
    assert keys <= set(best) and report["search"]["trials"] == 3
    assert {f"kd.{k}": v for k, v in report["search"]["best"].items()} == {k: best[k] for k in keys}
    for seed in (1, 2):
        defaults = json.loads(record_path(kd_ablation.STUDY_DIR, "keypoints-hkd", seed).read_text())
        tuned = json.loads(record_path(tune.STUDY_DIR, "keypoints-hkd-tuned", seed).read_text())
        assert defaults["key"] != tuned["key"], "the two arms distil with different settings"
    pair = report["paired"]["tuned_vs_defaults"]
    assert pair["seed_diffs"] == [round(d - t, 3) for d, t in zip(report["defaults"]["seed_wers"], report["tuned"]["seed_wers"])]
    assert all((tune.REPORT_DIR / name).is_file() for name in ("history.png", "importance.png", "README.md"))
