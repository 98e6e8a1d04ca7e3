import json
from pathlib import Path

import pytest
import yaml

from signkd.io import write_json
from signkd.report import PIPELINE, ROWS, write_report
from signkd.stage import run_stage

ROOT = Path(__file__).resolve().parents[1]


def _write_rows(tmp_path, extra_correct: dict) -> None:
    for i, stage in enumerate(PIPELINE):
        write_json(tmp_path / stage / "metrics.json", {"wall_time_s": 10.0 + i})
    for i, (_, stage, dev, test, ci, size) in enumerate(ROWS):
        m = json.loads((tmp_path / stage / "metrics.json").read_text())
        m.update({dev: 50.0 - i, test: 40.0 + i / 3, size: 1.5 + i,
                  f"test_wer_ci_low{ci}": 30.0 + i, f"test_wer_ci_high{ci}": 60.0 + i})
        if stage == "correct":
            m.update(extra_correct)
        write_json(tmp_path / stage / "metrics.json", m)


def test_report_table_comes_from_the_metrics_files(tmp_path):
    _write_rows(tmp_path, {"dev_changed": 2, "test_changed": 1})
    write_report(tmp_path, ["## extra", "- hello"])
    text = (tmp_path / "README.md").read_text()
    assert "| Distilled student, int8 ONNX | `quantize` | 47.00 | 41.00 | [33.00, 63.00] | 4.500 |" in text
    assert "| int8 student + text correction | `correct` | 46.00 | 41.33 | [34.00, 64.00] | 5.500 |" in text
    assert "| **total** | " + f"{sum(10.0 + i for i in range(len(PIPELINE))):.1f} |" in text
    assert (tmp_path / "wer.png").stat().st_size > 1000 and "- hello" in text


def test_a_rejected_correction_is_not_shown_as_a_result(tmp_path):
    _write_rows(tmp_path, {"dev_changed": 0, "test_changed": 0})
    text = (tmp_path / "README.md").read_text() if write_report(tmp_path, []) else ""
    row = next(line for line in text.splitlines() if "`correct`" in line)
    assert "correction not applied" in row and "46.00" not in row


def test_report_names_the_missing_stage(tmp_path):
    with pytest.raises(FileNotFoundError, match="dvc repro train_teacher"):
        write_report(tmp_path, [])


def test_bad_params_stop_a_stage_before_any_work(tmp_path, monkeypatch, capsys):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["kd"]["alpha"] = 1.5
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(tmp_path)
    called = []
    with pytest.raises(SystemExit) as exit_info:
        run_stage("distill", lambda params: called.append(1) or {})
    assert exit_info.value.code == 1 and not called
    assert "kd.alpha" in capsys.readouterr().err


def test_a_stage_writes_metrics_with_its_wall_time(tmp_path, monkeypatch):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_stage("unit", lambda params: {"test_wer": 1.0})
    metrics = json.loads((tmp_path / "reports/unit/metrics.json").read_text())
    assert metrics["test_wer"] == 1.0 and metrics["wall_time_s"] >= 0


def test_a_stage_ends_with_one_summary_line(tmp_path, monkeypatch, caplog):
    """`dvc repro` reads as one line per stage: its wall time and what it made."""
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with caplog.at_level("INFO"):
        run_stage("unit", lambda params: {"videos": 560, "frames": 24410, "frames_per_second": 36.04, "dataset": "synthetic",
                                          "test_wer": 4.256, "method": "dis"})
    done = [r.getMessage() for r in caplog.records if r.getMessage().startswith("done in")]
    assert len(done) == 1
    assert done[0].endswith(" s: 560 videos, 24,410 frames, 36.0 frames/s, test WER 4.26"), done[0]


def test_the_report_shows_the_seed_aware_figures_beside_its_one_draw(tmp_path):
    from signkd.params import load_params
    from tests.tiny_workspace import stage_main

    one_draw = stage_main("report").__globals__["one_draw"]
    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    missing = one_draw(params, tmp_path / "absent.json")
    assert "make kd-ablation" in missing[-1]
    study = tmp_path / "metrics.json"
    model = lambda m, lo, hi: {"test_wer_mean": m, "test_wer_ci_low": lo, "test_wer_ci_high": hi,  # noqa: E731
                               "test_wer_utt_ci_low": m - 0.1, "test_wer_utt_ci_high": m + 0.1}
    write_json(study, {"keypoints": {"teacher": model(3.1, 2.0, 4.0), "no_kd": model(6.2, 4.0, 8.0), "hkd": model(4.3, 3.0, 5.5),
                                     "paired": {}}, "video": {"hkd": model(9.9, 9.0, 11.0)},
                       "settings": {"seeds": [1, 2, 3, 4, 5], "temperature": 2.0, "alpha": 0.7}})
    lines = one_draw(params, study)
    assert "seed 1234" in lines[1] and "seeds and test utterances" in lines[2]
    assert "| HKD | 4.30 | [3.00, 5.50] |" in lines[3] and "9.90" not in lines[3], "the pipeline's student (keypoints), not video"
