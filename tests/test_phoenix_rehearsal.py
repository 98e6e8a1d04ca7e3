"""Dress rehearsal of `make phoenix` (marker `scale`, ~10 min on two cores): the Phoenix-2014 profile
runs end to end with `dvc repro` over an archive in the real Phoenix-2014 layout, served on
127.0.0.1 and fetched by the real download code (see benchmarks/phoenix_rehearsal.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _rehearsal():
    spec = importlib.util.spec_from_file_location("phoenix_rehearsal", ROOT / "benchmarks" / "phoenix_rehearsal.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.scale
def test_the_phoenix_profile_runs_end_to_end_on_a_phoenix_layout_archive(tmp_path):
    rehearsal = _rehearsal()
    repo, timing = rehearsal.rehearse(tmp_path)
    assert timing["up_to_date_after"], "a second `dvc repro` would rerun something"
    checks = rehearsal.consistency(repo)
    assert checks["vocab_size"] == 1295 and checks["teacher_num_classes"] == 1296
    assert checks["teacher_hidden"] == 1024 and checks["teacher_video_backbone"] == "resnet18"
    assert 7_000_000 < checks["student_num_parameters"] < 8_000_000  # KD-MSLRT-sized (7.15 M)
    assert checks["test_hypotheses_match_manifest"]
    assert checks["onnx_files"] >= 2  # fp32 and int8

    # the archive came through the download code: checksum recorded, unpacked in the release layout
    prepare = json.loads((repo / "reports/prepare/metrics.json").read_text())
    assert prepare["dataset"] == "phoenix2014"
    assert (repo / "data/raw/phoenix2014").is_dir()
    # scored with the Phoenix-2014 kit's rules: the CTM holds the raw hypotheses after the kit's clean-up
    from signkd.scoring import get_cleanup

    rows = [line.split("|") for line in (repo / "reports/distill/test_hyp.txt").read_text().splitlines()[1:]]
    kit = [g for _, _, hyp in rows for g in get_cleanup("phoenix2014").hypothesis(hyp.split())]
    ctm = [line.split()[4] for line in (repo / "reports/distill/test.ctm").read_text().splitlines() if line.strip()]
    assert ctm == kit
    stm_ids = {line.split()[0] for line in (repo / "reports/distill/test.stm").read_text().splitlines() if line.strip()}
    assert len(stm_ids) == 6
    costs = rehearsal.stage_costs(repo)
    assert set(f"{s}_wall_s" for s in rehearsal.STAGES) <= set(costs)
