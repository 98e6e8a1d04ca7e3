"""The distillation ablation runs every recipe end to end with the default online teacher."""

from __future__ import annotations

from signkd.params import load_params
from signkd.studies import kd_ablation
from tests.tiny_workspace import custom_workspace


def test_the_ablation_distils_every_recipe_from_the_online_teacher(tmp_path, monkeypatch):
    import torch

    ws = custom_workspace(tmp_path / "ws", ("prepare", "extract_keypoints", "extract_flow"), {"kd": {"use_tuned": False}})
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
    assert report["settings"]["teacher_targets"] == "online"
    assert not (ws / kd_ablation.STUDY_DIR / "targets-seed1").exists(), "online: no stored targets"
    assert (ws / kd_ablation.STUDY_DIR / "assistant-seed1" / "model.safetensors").is_file()
