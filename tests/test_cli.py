from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from signkd.cli import main
from signkd.features.keypoints import NUM_JOINTS, PARTS
from signkd.models.recognizer import KeypointStudent
from signkd.quantize import export_onnx
from signkd.training.trainer import set_seed

ROOT = Path(__file__).resolve().parents[1]


def test_check_params_reports_the_bad_key(tmp_path, capsys):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["kd"]["temperature"] = 0
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(raw))
    assert main(["check-params", str(tmp_path / "p.yaml")]) == 2
    assert "kd.temperature" in capsys.readouterr().err
    assert main(["check-params", str(ROOT / "params.yaml")]) == 0


def _deployable(tmp_path: Path) -> Path:
    """An exported (untrained) student with the config the pipeline stores: enough for the paths
    that must stop before any gloss is produced."""
    set_seed(0)
    parts = list(PARTS)
    student = KeypointStudent(3 * NUM_JOINTS, 16, 4).eval()
    config = {"vocab": ["REGEN", "SONNE", "WIND"], "preprocessing": {
        "keypoint_parts": parts, "max_gap": 4, "decode_method": "greedy", "beam_width": 1}}
    return export_onnx(student, torch.zeros(1, 8, 3 * NUM_JOINTS), tmp_path / "student.onnx", config)


def test_recognize_without_a_model_says_what_to_run(tmp_path, capsys):
    assert main(["recognize", str(tmp_path / "v.mp4"), "--model", str(tmp_path / "none.onnx")]) == 1
    err = capsys.readouterr().err
    assert "make repro" in err and "none.onnx" in err


def test_recognize_names_a_missing_video(tmp_path, capsys):
    code = main(["recognize", str(tmp_path / "missing.mp4"), "--model", str(_deployable(tmp_path))])
    err = capsys.readouterr().err
    assert code == 1 and "missing.mp4" in err and "manifest" not in err


def test_recognize_says_no_signing_on_a_video_without_a_person(tmp_path, capsys):
    video = tmp_path / "grey.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (160, 120))
    for _ in range(40):
        writer.write(np.full((120, 160, 3), 128, np.uint8))
    writer.release()
    code = main(["recognize", str(video), "--model", str(_deployable(tmp_path)), "--no-correction"])
    captured = capsys.readouterr()
    assert code == 1 and "no signing detected" in captured.err and captured.out == ""


def test_recognize_says_too_short_for_a_one_frame_folder(tmp_path, capsys):
    folder = tmp_path / "one"
    folder.mkdir()
    cv2.imwrite(str(folder / "f0.png"), np.full((120, 160, 3), 128, np.uint8))
    code = main(["recognize", str(folder), "--model", str(_deployable(tmp_path)), "--no-correction"])
    assert code == 1 and "too short" in capsys.readouterr().err


def test_video_fps_is_read_from_the_file(tmp_path):
    from signkd.recognize import video_fps

    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    for _ in range(5):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    assert video_fps(video) == pytest.approx(30.0)
    assert video_fps(tmp_path) == 25.0
