"""A model's spec: its vocabulary, how raw video became its input, and its architecture.

Built once from params (`signkd.experiment.student_config` / `teacher_config`), written as a
checkpoint's `model.json` and into an exported ONNX file's metadata, and read back by everything
that rebuilds or runs the model. It is typed and versioned so that a typo, a missing field or a
file of another version stops with one line naming the key, instead of a model silently built
with a default. Files written before the version existed (flat, unversioned) go through `migrate`,
the one place that knows what they lacked and which value the code used in its place.

Imports pydantic only (no torch): `recognize` reads the spec of an ONNX model.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from signkd.errors import InputError, one_line

FORMAT_VERSION: Literal[1] = 1
KINDS = ("student", "teacher")
Modality = Literal["video", "keypoints", "flow"]
Part = Literal["pose", "left_hand", "right_hand", "face"]


class SpecError(InputError, ValueError):
    """A model spec that cannot be read; one line naming the file and the key."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskModel(_Frozen):
    """One MediaPipe Tasks model file as training used it (`signkd.features.model_files.recorded`):
    `recognize` runs, or fetches, exactly this file and refuses another."""

    path: str
    url: str
    sha256: str


class Preprocessing(_Frozen):
    """How raw video became the model's input, and how its output is decoded: `recognize`, live
    mode and `quantize` rebuild exactly the features the model was trained and selected with."""

    keypoint_parts: tuple[Part, ...]
    max_gap: int
    frame_stride: int  # MediaPipe on every n-th frame (keypoint student); 1 = every frame
    fps: float  # the training videos' rate: any input is brought to it
    frame_height: int
    frame_width: int
    decode_method: Literal["greedy", "beam"]
    beam_width: int
    keypoint_backend: Literal["holistic", "tasks"]
    keypoint_models: dict[Literal["hand", "pose", "face"], TaskModel]  # tasks: per extracted part; holistic: {}


class _Common(_Frozen):
    keypoint_dim: int
    hidden: int
    num_classes: int
    dropout: float
    cnn_width: int
    video_backbone: Literal["small_cnn", "resnet18"]
    # a fresh model's local pretrained weights; a saved model is rebuilt without reading the file
    video_backbone_weights: str


class StudentArchitecture(_Common):
    kind: Literal["student"]
    modality: Modality

    @property
    def inputs(self) -> tuple[str, ...]:
        """The modalities the model reads."""
        return (self.modality,)


class TeacherArchitecture(_Common):
    kind: Literal["teacher"]
    fusion: Literal["early", "late", "attention", "lateral"]
    modalities: tuple[Modality, ...]
    modality_dropout: float

    @property
    def inputs(self) -> tuple[str, ...]:
        """The modalities the model reads."""
        return tuple(self.modalities)


Architecture = Annotated[Union[StudentArchitecture, TeacherArchitecture], Field(discriminator="kind")]


class ModelSpec(_Frozen):
    format_version: Literal[1]
    vocab: tuple[str, ...]  # class c > 0 is vocab[c - 1]; 0 is the CTC blank
    preprocessing: Preprocessing
    architecture: Architecture

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored in model.json and in the ONNX metadata."""
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, raw: object, source: str = "model spec") -> ModelSpec:
        """A stored spec of this or an older format (see `migrate`)."""
        return migrate(raw, source)

    def with_architecture(self, **changes: Any) -> ModelSpec:
        """This spec with some architecture fields replaced (a study's variant), validated anew."""
        return _validate({**self.model_dump(), "architecture": {**self.architecture.model_dump(), **changes}}, "model spec")


# What the code used for a key that files of its time did not write yet (`build_model`'s and
# `recognize`'s fallbacks before the spec existed); migrate fills in exactly these.
_OLD_ARCHITECTURE = {
    "student": {"cnn_width": 16, "modality": "keypoints", "video_backbone": "small_cnn", "video_backbone_weights": ""},
    "teacher": {"cnn_width": 32, "modality_dropout": 0.0, "modalities": ["video", "keypoints", "flow"],
                "video_backbone": "small_cnn", "video_backbone_weights": ""},
}
_OLD_PREPROCESSING = {"fps": 25.0, "frame_stride": 1, "keypoint_backend": "holistic", "keypoint_models": {}}
_ARCHITECTURE_KEYS = ("kind", "keypoint_dim", "hidden", "num_classes", "dropout", "cnn_width", "video_backbone",
                      "video_backbone_weights", "modality", "fusion", "modalities", "modality_dropout")


def migrate(raw: object, source: str = "model spec") -> ModelSpec:
    """The spec in a stored JSON object: this format, or the flat unversioned one written before
    it (architecture keys at the top level, `keypoint_parts` twice), with the defaults the code of
    that time used for keys it lacked. Anything else -- an unknown key, a missing or mistyped
    field, another format_version -- is a SpecError naming `source` and the key."""
    if not isinstance(raw, dict):
        raise SpecError(one_line(f"{source}: a model spec is a JSON object, got {type(raw).__name__}"))
    if "format_version" not in raw:
        return _validate(_from_flat(raw, source), source)
    if raw["format_version"] != FORMAT_VERSION:
        raise SpecError(one_line(f"{source}: format_version {raw['format_version']!r} is not one this SignKD reads "
                                 f"({FORMAT_VERSION}); use the SignKD version that wrote it"))
    return _validate(raw, source)


def _from_flat(raw: dict, source: str) -> dict:
    """An unversioned file as the nested form; unknown keys stay where they were, to be refused."""
    flat = dict(raw)
    architecture = {k: flat.pop(k) for k in _ARCHITECTURE_KEYS if k in flat}
    architecture = {**_OLD_ARCHITECTURE.get(str(architecture.get("kind")), {}), **architecture}
    prep = flat.pop("preprocessing", None)
    parts = flat.pop("keypoint_parts", None)  # a copy of preprocessing.keypoint_parts
    if isinstance(prep, dict):
        prep = {**_OLD_PREPROCESSING, **prep}
        if parts is not None and "keypoint_parts" not in prep:
            prep["keypoint_parts"] = parts
        elif parts is not None and parts != prep["keypoint_parts"]:
            raise SpecError(one_line(f"{source}: keypoint_parts {parts!r} differs from preprocessing.keypoint_parts "
                                     f"{prep['keypoint_parts']!r}; the file was edited by hand: make them agree"))
    nested = {"format_version": FORMAT_VERSION, **flat, "architecture": architecture}
    return nested if prep is None else {**nested, "preprocessing": prep}


def _validate(data: dict, source: str) -> ModelSpec:
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(one_line(f"{source}: invalid model spec: {_message(err)}")) from None


def _message(err: ValidationError) -> str:
    out = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        if len(loc) > 1 and loc[0] == "architecture" and loc[1] in KINDS:
            del loc[1]  # the union member pydantic tried, not a key of the file
        key = ".".join(loc) or "<root>"
        if e["type"] == "extra_forbidden":
            out.append(f"{key}: unknown key")
        elif e["type"] == "missing":
            out.append(f"{key}: missing")
        else:
            got = e.get("input")
            out.append(f"{key}: {e['msg']}" + ("" if isinstance(got, (dict, list)) else f" (got {got!r:.80})"))
    return "; ".join(out)
