"""params.yaml schema: every stage validates the whole file before doing any work.

A typo (`kd.alpah`), a wrong type or an out-of-range value (`kd.alpha: 1.5`) stops the stage
with one message naming the key, instead of surfacing as a strange failure an hour later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SyntheticParams(_Strict):
    num_train: int = Field(ge=1)
    num_dev: int = Field(ge=1)
    num_test: int = Field(ge=1)
    num_signers: int = Field(ge=1, le=32)
    min_signs: int = Field(ge=1)
    max_signs: int = Field(ge=1, le=12)
    height: int = Field(ge=64, le=1080)
    width: int = Field(ge=64, le=1920)
    split_mode: Literal["multi_signer", "signer_independent"] = "multi_signer"
    test_signer: int | None = Field(default=None, ge=1)  # held-out signer number (4 = Signer04)

    @model_validator(mode="after")
    def _consistent(self):
        if self.min_signs > self.max_signs:
            raise ValueError(f"min_signs ({self.min_signs}) must be <= max_signs ({self.max_signs})")
        if self.split_mode == "signer_independent" and self.num_signers < 2:
            raise ValueError("split_mode signer_independent needs num_signers >= 2")
        if self.test_signer is not None and (
            self.split_mode != "signer_independent" or self.test_signer > self.num_signers
        ):
            raise ValueError("test_signer needs split_mode signer_independent and must be <= num_signers")
        return self


class DownloadParams(_Strict):
    url: str = Field(min_length=1)
    sha256: str = Field(default="", pattern=r"^([0-9a-fA-F]{64})?$")
    expected_size: int = Field(default=0, ge=0)


class DataParams(_Strict):
    dataset: Literal["synthetic", "phoenix2014", "phoenix2014t", "csl_daily"]
    raw_dir: str
    manifest_dir: str
    synthetic: SyntheticParams
    download: DownloadParams


class ValidateParams(_Strict):
    min_frames: int = Field(ge=1)
    min_detection_rate: float = Field(ge=0.0, le=1.0)
    max_abs_flow: float = Field(gt=0.0)


class KeypointParams(_Strict):
    out_dir: str
    workers: int = Field(ge=1, le=256)
    on_error: Literal["fail", "skip"]
    max_gap: int = Field(ge=0, le=100)


class FlowParams(_Strict):
    out_dir: str
    method: Literal["dis", "farneback", "tvl1"]
    height: int = Field(ge=4, le=512)
    width: int = Field(ge=4, le=512)
    workers: int = Field(ge=1, le=256)
    on_error: Literal["fail", "skip"]


class ModelParams(_Strict):
    frame_height: int = Field(ge=16, le=512)
    frame_width: int = Field(ge=16, le=512)
    hidden: int = Field(ge=8, le=4096)
    student_hidden: int = Field(ge=8, le=4096)
    cnn_width: int = Field(ge=4, le=512)
    keypoint_parts: list[Literal["pose", "left_hand", "right_hand", "face"]] = Field(min_length=1)

    @model_validator(mode="after")
    def _parts_unique(self):
        if len(set(self.keypoint_parts)) != len(self.keypoint_parts):
            raise ValueError(f"keypoint_parts lists a part twice: {self.keypoint_parts}")
        return self
    dropout: float = Field(ge=0.0, lt=1.0)


class TrainParams(_Strict):
    epochs: int = Field(ge=1)
    lr: float = Field(gt=0.0, le=1.0)
    batch_size: int = Field(ge=1)


class TeacherParams(TrainParams):
    fusion: Literal["early", "late"]
    modality_dropout: float = Field(ge=0.0, lt=1.0)


class LevelWeights(_Strict):
    frame: float = Field(ge=0.0)
    temporal: float = Field(ge=0.0)
    sequence: float = Field(ge=0.0)


class KDParams(TrainParams):
    alpha: float = Field(ge=0.0, le=1.0)
    temperature: float = Field(gt=0.0, le=100.0)
    use_tuned_temperature: bool
    level_weights: LevelWeights


class TuneParams(_Strict):
    n_trials: int = Field(ge=1)
    epochs: int = Field(ge=1)
    temperature_min: float = Field(gt=0.0)
    temperature_max: float = Field(gt=0.0)

    @model_validator(mode="after")
    def _range_ordered(self):
        if self.temperature_min > self.temperature_max:
            raise ValueError(
                f"temperature_min ({self.temperature_min}) must be <= temperature_max ({self.temperature_max})"
            )
        return self


class DecodeParams(_Strict):
    method: Literal["greedy", "beam"]
    beam_width: int = Field(ge=1, le=256)


class QuantizeParams(_Strict):
    latency_runs: int = Field(ge=1)


class CorrectParams(_Strict):
    pretrained: str
    pretrain_steps: int = Field(ge=1)
    finetune_steps: int = Field(ge=1)
    noise_samples: int = Field(ge=1)
    lr: float = Field(gt=0.0, le=1.0)
    batch_size: int = Field(ge=1)


class Params(_Strict):
    seed: int = Field(ge=0)
    data: DataParams
    validate_: ValidateParams = Field(alias="validate")  # `validate` is a pydantic method name
    keypoints: KeypointParams
    flow: FlowParams
    model: ModelParams
    teacher: TeacherParams
    student: TrainParams
    kd: KDParams
    tune: TuneParams
    decode: DecodeParams
    quantize: QuantizeParams
    correct: CorrectParams


class ParamsError(ValueError):
    """params.yaml is invalid; the message names every bad key."""


def _format_errors(err: ValidationError, path: Path) -> str:
    lines = [f"{path}: invalid parameters:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key (check the spelling against params.yaml's documented keys)")
        else:
            lines.append(f"  {key}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def parse_params(raw: dict, source: Path = Path("params.yaml")) -> Params:
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ParamsError(_format_errors(err, source)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml (no code is evaluated: yaml.safe_load)."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path} not found: run from the repository root (where dvc.yaml is)")
    with open(path, encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    return parse_params(raw, path)


def flatten(params: Params) -> dict[str, object]:
    """Dotted keys (`kd.alpha`) as MLflow and `dvc exp run -S` spell them."""
    out: dict[str, object] = {}

    def walk(prefix: str, obj: object) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            out[prefix] = obj

    walk("", params.model_dump(by_alias=True))
    return out
