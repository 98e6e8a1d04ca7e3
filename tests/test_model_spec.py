"""The model spec (signkd.models.spec): one typed, versioned description of a model that rebuilds it
from model.json or an exported ONNX file; files written before the version existed still load,
with the defaults the code of their time used."""

from __future__ import annotations

import copy
import json

import onnx
import pytest
import torch

from signkd.errors import InputError
from signkd.features.keypoints import NUM_JOINTS
from signkd.inference import CONFIG_KEY, OnnxBackend
from signkd.models.checkpoint import CONFIG, build_model, load_checkpoint, save_checkpoint
from signkd.models.recognizer import MODALITIES, KeypointStudent, MultiModalTeacher, Student
from signkd.models.spec import ModelSpec, Preprocessing, StudentArchitecture, migrate
from signkd.quantize import export_onnx, read_config
from signkd.training.trainer import set_seed
from tests.toy_data import student_spec

VOCAB = ["ABEND", "FROST", "GEWITTER", "HEUTE", "KALT", "MEHR", "MORGEN", "NACHT", "NEBEL", "NORD", "OST", "REGEN",
         "SCHNEE", "SCHOEN", "SONNE", "STARK", "SUED", "WARM", "WENIG", "WEST", "WIND", "WOLKE"]
PARTS = ["pose", "left_hand", "right_hand", "face"]
# models/train_student/model.json as `student_config` wrote it before the spec existed (flat, unversioned)
OLD_STUDENT = {
    "cnn_width": 16, "dropout": 0.1, "hidden": 64, "keypoint_dim": 219, "keypoint_parts": PARTS, "kind": "student",
    "modality": "keypoints", "num_classes": 23,
    "preprocessing": {"beam_width": 5, "decode_method": "beam", "fps": 25.0, "frame_height": 32, "frame_stride": 1,
                      "frame_width": 26, "keypoint_backend": "holistic", "keypoint_parts": PARTS, "max_gap": 4},
    "video_backbone": "small_cnn", "video_backbone_weights": "", "vocab": VOCAB,
}
OLD_TEACHER = {
    "cnn_width": 16, "dropout": 0.1, "fusion": "early", "hidden": 96, "keypoint_dim": 219, "keypoint_parts": PARTS,
    "kind": "teacher", "modalities": ["video", "keypoints", "flow"], "modality_dropout": 0.0, "num_classes": 23,
    "preprocessing": OLD_STUDENT["preprocessing"], "video_backbone": "small_cnn", "video_backbone_weights": "", "vocab": VOCAB,
}
EXPECTED_PREPROCESSING = Preprocessing(
    keypoint_parts=tuple(PARTS), max_gap=4, frame_stride=1, fps=25.0, frame_height=32, frame_width=26,
    decode_method="beam", beam_width=5, keypoint_backend="holistic", keypoint_models={})


def _shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_an_old_flat_student_file_migrates_to_the_spec_and_builds_the_same_model():
    spec = migrate(copy.deepcopy(OLD_STUDENT))
    assert spec == ModelSpec(
        format_version=1, vocab=tuple(VOCAB), preprocessing=EXPECTED_PREPROCESSING,
        architecture=StudentArchitecture(kind="student", modality="keypoints", keypoint_dim=219, hidden=64, num_classes=23,
                                         dropout=0.1, cnn_width=16, video_backbone="small_cnn", video_backbone_weights=""))
    assert _shapes(build_model(spec)) == _shapes(Student("keypoints", 219, 64, 23, 0.1, 16))


def test_an_old_file_without_the_later_keys_gets_the_defaults_the_code_used():
    """What `build_model` and `recognize` fell back to before the spec: student cnn_width 16 and
    keypoints, teacher cnn_width 32, every stream and no modality dropout, the small CNN, 25 fps,
    every frame, Holistic keypoints."""
    student = {k: v for k, v in copy.deepcopy(OLD_STUDENT).items()
               if k not in ("cnn_width", "modality", "video_backbone", "video_backbone_weights")}
    for key in ("fps", "frame_stride", "keypoint_backend"):
        del student["preprocessing"][key]
    spec = migrate(student)
    assert spec.preprocessing == EXPECTED_PREPROCESSING
    assert spec.architecture == migrate(copy.deepcopy(OLD_STUDENT)).architecture
    teacher = {k: v for k, v in copy.deepcopy(OLD_TEACHER).items()
               if k not in ("cnn_width", "modalities", "modality_dropout", "video_backbone", "video_backbone_weights")}
    arch = migrate(teacher).architecture
    assert (arch.kind, arch.cnn_width, arch.inputs, arch.video_backbone, arch.video_backbone_weights) == (
        "teacher", 32, ("video", "keypoints", "flow"), "small_cnn", "")
    assert arch.modality_dropout == 0.0
    assert _shapes(build_model(migrate(teacher))) == _shapes(MultiModalTeacher(219, 96, 23, "early", 0.1, 32, 0.0, MODALITIES))


def test_the_spec_round_trips_through_model_json(tmp_path):
    spec = migrate(copy.deepcopy(OLD_TEACHER))
    set_seed(0)
    model = build_model(spec)
    save_checkpoint(model, spec, tmp_path)
    stored = json.loads((tmp_path / CONFIG).read_text())
    assert stored["format_version"] == 1 and stored["architecture"]["kind"] == "teacher" and "kind" not in stored
    loaded, again = load_checkpoint(tmp_path)
    assert again == spec and ModelSpec.from_json(spec.to_json()) == spec
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    raw = spec.to_json()  # a Tasks-keypoint model records each landmarker file
    raw["preprocessing"].update(keypoint_backend="tasks", keypoint_models={"hand": {"path": "h.task", "url": "", "sha256": "ab" * 32}})
    tasks = migrate(raw)
    assert tasks.preprocessing.keypoint_models["hand"].sha256 == "ab" * 32
    assert migrate(json.loads(json.dumps(tasks.to_json()))) == tasks


def _onnx(tmp_path, spec: ModelSpec | None):
    set_seed(0)
    model = KeypointStudent(3 * NUM_JOINTS, 16, 4).eval()
    return export_onnx(model, torch.zeros(1, 8, 3 * NUM_JOINTS), tmp_path / "s.onnx", spec)


def test_the_spec_round_trips_through_the_onnx_metadata_and_old_metadata_migrates(tmp_path):
    spec = student_spec(["REGEN", "SONNE", "WIND"], 3 * NUM_JOINTS, 16)
    path = _onnx(tmp_path, spec)
    assert read_config(path) == spec and OnnxBackend(path).config == spec
    # a file exported before the spec: the flat dict in the metadata
    old = {**copy.deepcopy(OLD_STUDENT), "vocab": ["REGEN", "SONNE", "WIND"], "num_classes": 4, "keypoint_dim": 3 * NUM_JOINTS}
    proto = onnx.load(str(path))
    (entry,) = [e for e in proto.metadata_props if e.key == CONFIG_KEY]
    entry.value = json.dumps(old)
    onnx.save(proto, str(path))
    assert read_config(path) == OnnxBackend(path).config == migrate(old)


@pytest.mark.parametrize("where, key", [((), "colour"), (("preprocessing",), "gamma"), (("architecture",), "heads")])
def test_an_unknown_key_is_refused_with_one_line_naming_it(where, key):
    new = migrate(copy.deepcopy(OLD_STUDENT)).to_json()
    node = new
    for part in where:
        node = node[part]
    node[key] = 1
    with pytest.raises(InputError, match=rf"model.json: .*{'.'.join((*where, key))}: unknown key") as err:
        migrate(new, "model.json")
    assert "\n" not in str(err.value)
    old = copy.deepcopy(OLD_STUDENT)  # the flat form too; its architecture keys are read into `architecture`
    (old["preprocessing"] if where == ("preprocessing",) else old)[key] = 1
    with pytest.raises(InputError, match=rf"{key}: unknown key"):
        migrate(old, "model.json")


def test_a_missing_field_or_another_version_is_refused():
    new = migrate(copy.deepcopy(OLD_STUDENT)).to_json()
    del new["architecture"]["hidden"]
    with pytest.raises(InputError, match="architecture.hidden: missing"):
        migrate(new)
    with pytest.raises(InputError, match="format_version 2"):
        migrate({**migrate(copy.deepcopy(OLD_STUDENT)).to_json(), "format_version": 2})
    with pytest.raises(InputError, match="architecture.fusion"):  # a student has no fusion
        migrate(copy.deepcopy(OLD_STUDENT)).with_architecture(fusion="late")
