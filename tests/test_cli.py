import json
from pathlib import Path

import yaml

from signkd.cli import main
from signkd.data.synthetic import frames_path, render_corpus
from signkd.features.keypoints import NUM_JOINTS
from signkd.io import write_json
from signkd.models.recognizer import KeypointStudent
from signkd.quantize import export_onnx, quantize_int8
from signkd.training.trainer import set_seed

ROOT = Path(__file__).resolve().parents[1]


def test_check_params_reports_the_bad_key(tmp_path, capsys):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["kd"]["temperature"] = 0
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(raw))
    assert main(["check-params", str(tmp_path / "p.yaml")]) == 2
    assert "kd.temperature" in capsys.readouterr().err
    assert main(["check-params", str(ROOT / "params.yaml")]) == 0


def test_recognize_without_models_says_what_to_run(tmp_path, capsys):
    assert main(["recognize", str(tmp_path / "v.mp4"), "--models", str(tmp_path / "models")]) == 1
    assert "make repro" in capsys.readouterr().err


def test_recognize_runs_mediapipe_and_the_int8_model_on_a_video_folder(tmp_path, capsys):
    render_corpus(tmp_path / "raw", seed=3, num_train=1, num_dev=1, num_test=1, num_signers=1,
                  min_signs=1, max_signs=1, height=260, width=210, progress=False)
    video = frames_path(tmp_path / "raw", "test", "synth_test_00000")
    vocab = ["REGEN", "SONNE", "WIND"]
    set_seed(0)
    student = KeypointStudent(3 * NUM_JOINTS, 16, len(vocab) + 1).eval()
    models = tmp_path / "models"
    fp32 = export_onnx(student, 3 * NUM_JOINTS, models / "quantize" / "student_fp32.onnx")
    quantize_int8(fp32, models / "quantize" / "student_int8.onnx")
    write_json(models / "distill" / "model.json", {"vocab": vocab})
    capsys.readouterr()  # drop what rendering printed
    assert main(["recognize", str(video), "--models", str(models), "--json", "--no-correction"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["frames"] > 10 and out["real_time_factor"] > 0
    assert all(g in vocab for g in out["glosses"].split())


def test_recognize_names_a_missing_video(tmp_path, capsys):
    models = tmp_path / "models"
    write_json(models / "distill" / "model.json", {"vocab": ["A"]})
    (models / "quantize").mkdir(parents=True)
    (models / "quantize" / "student_int8.onnx").write_bytes(b"")
    code = main(["recognize", str(tmp_path / "missing.mp4"), "--models", str(models)])
    assert code == 1 and "missing.mp4" in capsys.readouterr().err
