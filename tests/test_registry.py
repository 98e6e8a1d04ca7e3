"""MLflow model registry: versions, the `champion` alias that only moves to a model no worse on
dev, and `signkd recognize --model models:/<name>@champion` from another directory."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from signkd.cli import main
from signkd.features.keypoints import NUM_JOINTS
from signkd.models.recognizer import KeypointStudent
from signkd.quantize import export_onnx, read_config
from signkd.registry import CHAMPION, DEV_WER_TAG, log_and_register, registered_name
from signkd.training.trainer import set_seed
from tests.toy_data import student_spec

NAME = registered_name("synthetic")


def _student(tmp_path, tag: str):
    set_seed(0)
    config = student_spec(["REGEN", "SONNE", tag], 3 * NUM_JOINTS, 16)
    model = KeypointStudent(3 * NUM_JOINTS, 16, 4).eval()
    return export_onnx(model, torch.zeros(1, 8, 3 * NUM_JOINTS), tmp_path / f"{tag}.onnx", config)


@pytest.fixture()
def store(tmp_path, monkeypatch):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = mlflow.create_experiment("t", artifact_location=(tmp_path / "store" / "artifacts").as_uri())
    yield experiment
    if mlflow.active_run() is not None:
        mlflow.end_run()


def test_champion_moves_only_to_a_model_no_worse_on_dev(tmp_path, store):
    import mlflow

    with mlflow.start_run(experiment_id=store):
        first = log_and_register(_student(tmp_path, "V1"), NAME, 30.0, "student_int8")
        worse = log_and_register(_student(tmp_path, "V2"), NAME, 31.5, "student_int8")
        tie = log_and_register(_student(tmp_path, "V3"), NAME, 30.0, "student_int8")
    assert (first.champion, worse.champion, tie.champion) == (True, False, True)
    assert worse.previous_champion == first.version and tie.previous_champion == first.version
    client = mlflow.MlflowClient()
    champion = client.get_model_version_by_alias(NAME, CHAMPION)
    assert str(champion.version) == tie.version and float(champion.tags[DEV_WER_TAG]) == 30.0
    model = client.get_model_version(NAME, worse.version)
    signature = mlflow.models.get_model_info(f"models:/{NAME}/{model.version}").signature
    (spec,) = signature.inputs.inputs
    assert spec.name == "keypoints" and spec.shape == (-1, -1, 3 * NUM_JOINTS)


def test_recognize_loads_the_champion_from_any_directory(tmp_path, store, monkeypatch, capsys):
    import mlflow

    from signkd.recognize import load_deployable

    with mlflow.start_run(experiment_id=store):
        log_and_register(_student(tmp_path, "V1"), NAME, 20.0, "student_int8")
        log_and_register(_student(tmp_path, "V2"), NAME, 25.0, "student_int8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    _, config = load_deployable(f"models:/{NAME}@{CHAMPION}")
    assert config.vocab[-1] == "V1" and config == read_config(_student(tmp_path, "V1"))

    video = elsewhere / "grey.mp4"  # a loaded model gets as far as MediaPipe, which finds nobody
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (160, 120))
    for _ in range(12):
        writer.write(np.full((120, 160, 3), 128, np.uint8))
    writer.release()
    assert main(["recognize", str(video), "--model", f"models:/{NAME}@{CHAMPION}", "--no-correction"]) == 1
    assert "no signing detected" in capsys.readouterr().err

    assert main(["recognize", str(video), "--model", f"models:/{NAME}@nobody", "--no-correction"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot load models:/") and "\n" not in err
