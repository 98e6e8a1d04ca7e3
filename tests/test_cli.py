from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from signkd.cli import main
from signkd.features.keypoints import NUM_JOINTS
from signkd.models.recognizer import KeypointStudent
from signkd.quantize import export_onnx
from signkd.training.trainer import set_seed
from tests.toy_data import student_spec

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
    student = KeypointStudent(3 * NUM_JOINTS, 16, 4).eval()
    config = student_spec(["REGEN", "SONNE", "WIND"], 3 * NUM_JOINTS, 16)
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


@pytest.mark.parametrize("content", [b"not a model at all\n", "truncated"])
def test_recognize_names_a_model_file_that_is_not_onnx(tmp_path, capsys, content):
    model = tmp_path / "m.onnx"
    good = _deployable(tmp_path).read_bytes()
    model.write_bytes(good[: len(good) // 2] if content == "truncated" else content)
    code = main(["recognize", str(tmp_path / "v.mp4"), "--model", str(model), "--no-correction"])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "m.onnx is not a readable ONNX model" in err and "dvc repro quantize" in err


def test_recognize_answers_a_person_for_an_image_or_an_empty_folder(tmp_path, capsys):
    model = str(_deployable(tmp_path))
    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), np.full((120, 160, 3), 128, np.uint8))
    empty = tmp_path / "empty"
    empty.mkdir()
    for source, needle in ((image, "is a single image"), (empty, "holds no frame images")):
        code = main(["recognize", str(source), "--model", model, "--no-correction"])
        err = capsys.readouterr().err
        assert code == 1 and needle in err and "manifest" not in err and "prepare" not in err


@pytest.mark.parametrize("args, needle", [
    (["--fps", "inf"], "--fps"), (["--fps", "nan"], "--fps"), (["--fps", "-25"], "--fps"),
    (["--beam-width", "0"], "--beam-width"), (["--threads", "0"], "--threads"),
])
def test_recognize_refuses_a_bad_number_before_any_work(tmp_path, capsys, args, needle):
    with pytest.raises(SystemExit) as exit_:
        main(["recognize", str(tmp_path / "v.mp4"), *args])  # no model exists: the argument is checked first
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1 and needle in err


def test_video_fps_is_read_from_the_file(tmp_path):
    from signkd.recognize import video_fps

    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    for _ in range(5):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    assert video_fps(video) == pytest.approx(30.0)
    assert video_fps(tmp_path) == 25.0


# --- recognising a real rendered sentence: confidences, overlay, frame folders ------------------

VOCAB = ["REGEN", "SONNE", "WIND"]


def _confident_student(tmp_path: Path, gloss: str | None = "SONNE") -> Path:
    """An exported student whose sequence head always prefers `gloss` (None: the CTC blank): its
    hypothesis and the confidence the CLI must report are known in advance."""
    set_seed(0)
    student = KeypointStudent(3 * NUM_JOINTS, 16, len(VOCAB) + 1).eval()
    with torch.no_grad():
        student.branch.heads.seq_head.weight.zero_()
        student.branch.heads.seq_head.bias.zero_()
        student.branch.heads.seq_head.bias[0 if gloss is None else VOCAB.index(gloss) + 1] = 3.0
    config = student_spec(VOCAB, 3 * NUM_JOINTS, 16)
    return export_onnx(student, torch.zeros(1, 8, 3 * NUM_JOINTS), tmp_path / "confident.onnx", config)


@pytest.fixture(scope="module")
def signed_sentence(tmp_path_factory):
    """A rendered sentence as an OpenCV-written .mp4 (30 fps, to check the video's own rate is used)
    and as a corpus-style PNG frame folder."""
    from signkd.data.render import make_signer, render_video

    out = tmp_path_factory.mktemp("signed")
    rng = np.random.default_rng(3)
    frames = render_video(("REGEN", "SONNE", "WIND"), make_signer(0, rng), rng).frames
    video = out / "sentence.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, frames[0].shape[1::-1])
    for f in frames:
        writer.write(f)
    writer.release()
    folder = out / "sentence"
    folder.mkdir()
    for i, f in enumerate(frames, start=1):
        cv2.imwrite(str(folder / f"images{i:04d}.png"), f)
    return video, folder, len(frames)


def _read_video(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def test_recognize_json_reports_each_gloss_with_its_confidence_and_writes_the_overlay(tmp_path, capsys, signed_sentence):
    import json

    from signkd.features.overlay import COLOURS

    video, _, n = signed_sentence
    overlay = tmp_path / "out" / "overlay.mp4"
    code = main(["recognize", str(video), "--model", str(_confident_student(tmp_path)), "--no-correction",
                 "--json", "--overlay", str(overlay)])
    summary = json.loads(capsys.readouterr().out)
    # a 30 fps file is brought to the 25 fps the model was trained at; the spans count at that rate
    assert code == 0 and summary["glosses"] == "SONNE" and summary["fps"] == 25.0 and summary["source_fps"] == pytest.approx(30.0)
    assert summary["frames"] == round(n * 25 / 30)
    (only,) = summary["confidences"]
    # every step gives SONNE logit 3 and the other 3 classes 0: posterior e^3 / (e^3 + 3) = 0.870
    assert only["gloss"] == "SONNE" and only["confidence"] == pytest.approx(np.exp(3) / (np.exp(3) + 3), abs=1e-3)
    assert 0 <= only["start_s"] < only["end_s"] <= n / 30.0 + 1e-6
    assert set(summary["seconds"]) == {"load", "keypoints", "model", "overlay"}
    busy = sum(v for k, v in summary["seconds"].items() if k != "overlay")  # writing the overlay is not recognising
    assert summary["real_time_factor"] == pytest.approx(busy / (n / 30.0), rel=0.05)  # per second of the video

    written = _read_video(overlay)
    assert len(written) == n and written[0].shape[:2] == (2 * 260, 2 * 210)  # Phoenix-size frames shown 2x
    last = written[-1]
    caption = last[-24:]  # white text (all channels high: no landmark colour is) on a darkened bar
    assert (caption.min(axis=-1) > 200).mean() > 0.01 and np.median(caption) < 60, "the gloss caption along the bottom"
    colour = np.array(COLOURS["pose"], np.int16)
    assert (np.abs(last.astype(np.int16) - colour).max(axis=-1) < 60).mean() > 0.001, "landmarks are drawn"


def test_recognize_reads_a_corpus_frame_folder_at_25_fps(tmp_path, capsys, signed_sentence):
    _, folder, n = signed_sentence
    code = main(["recognize", str(folder), "--model", str(_confident_student(tmp_path, "WIND")), "--no-correction"])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("WIND\n") and f"{n} frames at 25 fps" in out and "WIND(0." in out


def test_recognize_refuses_an_overlay_format_it_cannot_write(tmp_path, capsys):
    code = main(["recognize", str(tmp_path / "v.mp4"), "--overlay", str(tmp_path / "o.gif")])
    assert code == 1 and "o.gif" in capsys.readouterr().err


def test_ctc_alignment_puts_a_blank_between_repeats_and_follows_the_posteriors():
    from signkd.recognize import ctc_align, gloss_spans

    # steps:        0     1     2     3     4     5
    best = np.array([1,    1,    0,    1,    2,    2])  # class with most mass per step
    lp = np.log(np.full((6, 3), 0.1))
    lp[np.arange(6), best] = np.log(0.8)
    lp[1] = np.log([0.2, 0.6, 0.2])
    assert ctc_align(lp, [1, 1, 2]) == [(0, 2), (3, 4), (4, 6)]
    spans = gloss_spans(lp, ["A", "A", "B"], ["A", "B"])
    assert [(s.gloss, s.start_frame, s.end_frame) for s in spans] == [("A", 0, 8), ("A", 12, 16), ("B", 16, 24)]
    assert [s.confidence for s in spans] == pytest.approx([0.7, 0.8, 0.8])  # mean posterior over its steps
    with pytest.raises(ValueError, match="cannot be aligned"):
        ctc_align(lp[:2], [1, 1])  # a repeat needs a blank between: 3 steps at least


def test_webm_video_is_read_with_its_own_frame_rate(tmp_path):
    from signkd.features.frames import iter_frames
    from signkd.recognize import video_fps

    video = tmp_path / "clip.webm"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"VP80"), 30.0, (64, 48))
    assert writer.isOpened(), "this OpenCV build cannot write VP8 .webm"
    for i in range(6):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    assert video_fps(video) == pytest.approx(30.0) and sum(1 for _ in iter_frames(video)) == 6


def test_a_corrector_whose_gate_accepts_nothing_is_not_loaded(tmp_path, capsys, signed_sentence):
    import json

    _, folder, _ = signed_sentence
    corrector = tmp_path / "correct"
    corrector.mkdir()
    # margin null = dev calibration chose "never correct"; the weights are unreadable on purpose,
    # so loading the model (seconds of transformers import on a user's CPU) would fail this test
    (corrector / "corrector.json").write_text(json.dumps({"format_version": 1, "margin": None, "max_length": 64}))
    (corrector / "model.safetensors").write_bytes(b"not a model")
    code = main(["recognize", str(folder), "--model", str(_confident_student(tmp_path, "WIND")),
                 "--corrector", str(corrector), "--json"])
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert code == 0 and summary["corrected"] == "WIND" and summary["correction"] == "not applied"
    assert "correction" not in summary["seconds"] and "correction not applied" in captured.err


def test_recognize_runs_without_importing_torch(tmp_path, signed_sentence):
    """Deployment runs under ONNX Runtime: importing torch would add ~2.5 s of CPU to every call,
    a quarter of a 10 s video's real-time budget on one core (benchmarks/realtime.py)."""
    import subprocess
    import sys

    _, folder, _ = signed_sentence
    model = _confident_student(tmp_path, "WIND")
    script = ("import sys\nfrom signkd.cli import main\n"
              f"code = main(['recognize', {str(folder)!r}, '--model', {str(model)!r}, '--no-correction'])\n"
              "print('torch' in sys.modules, code)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.stdout.split()[:1] == ["WIND"] and done.stdout.split()[-2:] == ["False", "0"], done.stdout + done.stderr
    # nothing from MediaPipe or TFLite (absl/glog lines, "INFO: Created TensorFlow Lite ...") reaches the terminal
    assert done.stderr.strip() == "", done.stderr


def test_a_registry_model_without_a_store_creates_no_file_here(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    (tmp_path / "clip").mkdir()
    cv2.imwrite(str(tmp_path / "clip" / "f0.png"), np.full((120, 160, 3), 128, np.uint8))
    code = main(["recognize", "clip", "--model", "models:/signkd-synthetic-student@champion", "--no-correction"])
    err = capsys.readouterr().err
    assert code == 1 and "MLFLOW_TRACKING_URI" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip"], "nothing may be written in the current folder"


def test_recognize_says_no_signing_for_a_person_holding_still_with_hands_in_view(tmp_path, capsys, signed_sentence):
    """Hands in every frame, but held still (the middle frame of a signed sentence, repeated): the
    presence check alone passes this; the motion check must not."""
    _, folder, n = signed_sentence
    frames = sorted(folder.glob("*.png"))
    still = tmp_path / "still"
    still.mkdir()
    for i in range(n):
        (still / f"images{i + 1:04d}.png").write_bytes(frames[n // 2].read_bytes())
    model = _confident_student(tmp_path, "WIND")
    code = main(["recognize", str(still), "--model", str(model), "--no-correction"])
    err = capsys.readouterr().err
    assert code == 1 and "hands hardly move" in err
    assert main(["recognize", str(folder), "--model", str(model), "--no-correction"]) == 0  # the signing itself passes


def test_an_empty_recognition_says_so_and_exits_non_zero(tmp_path, capsys, signed_sentence):
    _, folder, _ = signed_sentence
    code = main(["recognize", str(folder), "--model", str(_confident_student(tmp_path, None)), "--no-correction"])
    err = capsys.readouterr().err
    assert code == 3 and "recognised no gloss" in err and len(err.strip().splitlines()) == 1


def _write(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    """MJPG .avi: each frame coded alone, so a repeated frame decodes to exactly the same pixels."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, frames[0].shape[1::-1])
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def test_a_video_at_50_or_30_fps_gives_the_model_what_the_25_fps_original_does(tmp_path, signed_sentence):
    """Webcams and phones film at 30 or 60 fps; the models learn signing speed at 25. The same
    signing re-encoded at 50 fps (each frame twice) and at 30 fps (nearest frames) must reach the
    model as the 25 fps original: the same frames, so the same landmarks, frame for frame."""
    from signkd.features.keypoints import keypoints_for_video
    from signkd.recognize import video_fps

    _, folder, n = signed_sentence
    frames = [cv2.imread(str(p)) for p in sorted(folder.iterdir())]
    videos = {25: _write(tmp_path / "25.avi", frames, 25.0),
              50: _write(tmp_path / "50.avi", [f for f in frames for _ in range(2)], 50.0),
              30: _write(tmp_path / "30.avi", [frames[int(j * 25 / 30 + 0.5)] for j in range(round(n * 30 / 25))], 30.0)}
    arrays = {fps: keypoints_for_video(v, source_fps=video_fps(v), target_fps=25.0) for fps, v in videos.items()}
    assert len(arrays[25]["mask"]) == n and arrays[25]["mask"].any()
    for fps in (50, 30):
        for key in ("landmarks", "mask"):
            np.testing.assert_array_equal(arrays[fps][key], arrays[25][key], err_msg=f"{fps} fps, {key}")


@pytest.mark.parametrize("threshold, state", [(0.5, "recognized"), (0.9, "outside_vocabulary")])
def test_recognize_says_when_the_input_is_outside_what_the_model_knows(tmp_path, capsys, signed_sentence, monkeypatch,
                                                                       threshold, state):
    """The confident student's gloss has confidence 0.870: known above a 0.5 threshold, not above 0.9."""
    import json

    monkeypatch.setattr("signkd.recognize.MIN_CONFIDENCE", threshold)
    _, folder, _ = signed_sentence
    code = main(["recognize", str(folder), "--model", str(_confident_student(tmp_path)), "--no-correction", "--json"])
    out = capsys.readouterr()
    summary = json.loads(out.out)
    assert code == 0 and summary["state"] == state and summary["confidence"] == pytest.approx(0.870, abs=1e-3)
    assert ("outside what this model knows" in out.err) == (state == "outside_vocabulary")
