"""params.yaml schema: every stage validates the whole file before doing any work.

A typo (`kd.alpah`), a wrong type or an out-of-range value (`kd.alpha: 1.5`) stops the stage
with one message naming the key, instead of surfacing as a strange failure an hour later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WrapValidator, model_validator

from signkd.errors import InputError
from signkd.io import NotUtf8, decode_utf8


class _Strict(BaseModel):
    # allow_inf_nan=False: `.inf`/`.nan` are valid YAML floats and pass every `ge=` bound, but
    # no parameter here means anything as infinity or NaN (a KD weight of .inf gives a NaN loss)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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

    @model_validator(mode="after")
    def _http(self):
        # the downloader speaks HTTP(S) only (resume by Range, size from Content-Length)
        scheme, sep, rest = self.url.partition("://")
        if not sep or scheme.lower() not in ("http", "https") or not rest.split("/")[0]:
            raise ValueError(f"url must be an http:// or https:// address (the downloader fetches and resumes over "
                             f"HTTP), got {self.url!r}; fix data.download.url")
        return self


class CustomDataParams(_Strict):
    """`data.dataset: custom`: the user's videos + CSV in <raw_dir>/custom (signkd.data.custom)."""

    annotations: str = Field(default="annotations.csv", min_length=1, pattern=r"^[^/\\]+\.csv$")  # file name, not a path
    keypoints_dir: str = ""  # folder of precomputed <id>.npz under <raw_dir>/custom; "" = MediaPipe extracts all


class DataParams(_Strict):
    dataset: Literal["synthetic", "phoenix2014", "phoenix2014t", "csl_daily", "custom"]
    raw_dir: str
    manifest_dir: str
    synthetic: SyntheticParams
    download: DownloadParams
    custom: CustomDataParams = CustomDataParams()
    # the frame rate of the training videos (the synthetic corpus and Phoenix: 25): it travels with
    # the model, and `recognize` / live mode bring any input to it (signkd.features.keypoints.at_frame_rate)
    fps: float = Field(default=25.0, gt=0.0, le=1000.0)


class ValidateParams(_Strict):
    min_frames: int = Field(ge=1)
    min_detection_rate: float = Field(ge=0.0, le=1.0)
    max_abs_flow: float = Field(gt=0.0)


class TaskModelParams(_Strict):
    """One MediaPipe Tasks model file (signkd.features.model_files): fetched from `url` to `path` when
    the tasks backend starts and the file is missing. `path` "" = that part is not extracted."""

    path: str = ""
    url: str = ""
    sha256: str = Field(default="", pattern=r"^([0-9a-fA-F]{64})?$")  # "" = computed, logged, to be pinned

    @model_validator(mode="after")
    def _local_path_http_url(self):
        if "://" in self.path:
            raise ValueError(f"path is where the .task file lives on this machine, not a URL (got {self.path!r}); "
                             "put the address in url")
        scheme, sep, rest = self.url.partition("://")
        if self.url and (not sep or scheme.lower() not in ("http", "https") or not rest.split("/")[0]):
            raise ValueError(f"url must be an http:// or https:// address (the model file is fetched over HTTP), "
                             f"got {self.url!r}")
        return self


_MODELS_URL = "https://storage.googleapis.com/mediapipe-models"


class TasksParams(_Strict):
    """keypoints.backend tasks: one landmarker per part."""

    hand: TaskModelParams = TaskModelParams(
        path="models/mediapipe/hand_landmarker.task",
        url=f"{_MODELS_URL}/hand_landmarker/hand_landmarker/float16/1/hand_landmarker.task")
    pose: TaskModelParams = TaskModelParams(
        path="models/mediapipe/pose_landmarker_full.task",
        url=f"{_MODELS_URL}/pose_landmarker/pose_landmarker_full/float16/1/pose_landmarker_full.task")
    face: TaskModelParams = TaskModelParams(
        path="models/mediapipe/face_landmarker.task",
        url=f"{_MODELS_URL}/face_landmarker/face_landmarker/float16/1/face_landmarker.task")


class KeypointParams(_Strict):
    out_dir: str
    workers: int = Field(ge=1, le=256)
    on_error: Literal["fail", "skip"]
    max_gap: int = Field(ge=0, le=100)
    # holistic: the legacy Holistic solution (mediapipe <= 0.10.21); tasks: the Tasks landmarkers
    # (signkd.features.tasks_backend), the only API of mediapipe >= 0.10.30
    backend: Literal["holistic", "tasks"] = "holistic"
    tasks: TasksParams = TasksParams()

    @model_validator(mode="after")
    def _tasks_extract_something(self):
        if self.backend == "tasks" and not any(m.path for m in (self.tasks.hand, self.tasks.pose, self.tasks.face)):
            raise ValueError("backend tasks with every keypoints.tasks.<part>.path empty would extract nothing; "
                             "set at least one path")
        return self


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
    # RGB frame encoder: small_cnn (the synthetic corpus) | resnet18 (real datasets, 224x224 frames)
    video_backbone: Literal["small_cnn", "resnet18"] = "small_cnn"
    # resnet18 only: a local file of torchvision resnet18 weights (.safetensors, or a torch state dict
    # read with weights_only=True); "" trains from scratch. Never a URL: nothing is downloaded
    video_backbone_weights: str = ""

    @model_validator(mode="after")
    def _parts_unique(self):
        if len(set(self.keypoint_parts)) != len(self.keypoint_parts):
            raise ValueError(f"keypoint_parts lists a part twice: {self.keypoint_parts}")
        if self.video_backbone_weights and self.video_backbone != "resnet18":
            raise ValueError("video_backbone_weights needs video_backbone: resnet18")
        if "://" in self.video_backbone_weights:
            raise ValueError("video_backbone_weights must be a local file path; weights are never downloaded")
        return self
    dropout: float = Field(ge=0.0, lt=1.0)


class TrainParams(_Strict):
    epochs: int = Field(ge=1)
    lr: float = Field(gt=0.0, le=1.0)
    batch_size: int = Field(ge=1)  # per process: under torchrun the effective batch is N times this
    # onecycle: warm-up then cosine decay; multistep: lr x gamma after each milestone epoch (VAC/CorrNet)
    schedule: Literal["onecycle", "multistep"] = "onecycle"
    milestones: list[int] = Field(default=[], max_length=10)
    gamma: float = Field(default=0.2, gt=0.0, le=1.0)
    weight_decay: float = Field(default=0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _milestones(self):
        if self.schedule == "multistep" and not self.milestones:
            raise ValueError("schedule multistep needs milestones (epochs after which the lr is multiplied by gamma)")
        if any(b <= a for a, b in zip(self.milestones, self.milestones[1:])) or any(
                not 0 < m < self.epochs for m in self.milestones):
            raise ValueError(f"milestones must increase and lie between 0 and epochs ({self.epochs}), "
                             f"got {self.milestones}")
        return self


Modality = Literal["video", "keypoints", "flow"]


class TeacherParams(TrainParams):
    fusion: Literal["early", "late", "attention", "lateral"]
    modalities: list[Modality] = Field(default=["video", "keypoints", "flow"], min_length=1)
    modality_dropout: float = Field(ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _modalities_unique(self):
        if len(set(self.modalities)) != len(self.modalities):
            raise ValueError(f"modalities lists a stream twice: {self.modalities}")
        return self


class StudentParams(TrainParams):
    modality: Literal["keypoints", "video"] = "keypoints"
    # keypoint student: MediaPipe on every n-th frame when `recognize` runs it (the frames between
    # are interpolated); it trains on stored keypoints thinned the same way. 1 = every frame.
    frame_stride: int = Field(default=1, ge=1, le=4)

    @model_validator(mode="after")
    def _stride_needs_keypoints(self):
        if self.frame_stride != 1 and self.modality != "keypoints":
            raise ValueError("frame_stride thins MediaPipe's frames: it applies to the keypoint student only")
        return self


class AugmentParams(_Strict):
    """Training-time augmentation shared by every model (each 0 = off)."""

    speed: float = Field(default=0.0, ge=0.0, lt=1.0)
    scale: float = Field(default=0.0, ge=0.0, lt=1.0)
    rotate: float = Field(default=0.0, ge=0.0, le=45.0)
    shift: float = Field(default=0.0, ge=0.0, lt=0.5)


# A KD setting is a number, or "tuned": the `tune` stage searches it and `distill` takes the best
# trial's value (signkd.kd.settings). A number always means that number.
TUNED = "tuned"


def _number_or_tuned(value, handler):
    """`tuned` passes as it is; anything else is validated as the number it must be (one error
    naming the key, not one per member of a union)."""
    if value == TUNED:
        return TUNED
    if isinstance(value, str):
        raise ValueError("must be a number, or `tuned` to let the tune stage choose it")
    return handler(value)


# Typed float for the validator; the value may also be the string "tuned" (signkd.kd.settings resolves it).
Weight = Annotated[float, Field(ge=0.0), WrapValidator(_number_or_tuned)]


class LevelWeights(_Strict):
    frame: Weight
    temporal: Weight
    sequence: Weight


class KDParams(TrainParams):
    recipe: Literal["logits", "hkd", "chain"] = "hkd"
    # out_of_fold: each training video's targets come from a teacher trained without it (k folds);
    # in_sample: the final teacher's outputs on its own training videos (near one-hot)
    teacher_targets: Literal["out_of_fold", "in_sample", "online"] = "out_of_fold"
    folds: int = Field(default=3, ge=2, le=10)
    # chain only: the assistant between teacher and student (a smaller multi-stream model)
    assistant_modalities: list[Modality] = Field(default=["video", "keypoints"], min_length=1)
    alpha: Annotated[float, Field(ge=0.0, le=1.0), WrapValidator(_number_or_tuned)]
    temperature: Annotated[float, Field(gt=0.0, le=100.0), WrapValidator(_number_or_tuned)]
    level_weights: LevelWeights

    @model_validator(mode="before")
    @classmethod
    def _no_use_tuned(cls, data):
        if isinstance(data, dict) and "use_tuned" in data:
            raise ValueError("kd.use_tuned was removed: write `tuned` in place of each number the tune stage "
                             "should set (e.g. `alpha: tuned`), or a number to fix it")
        return data


class TuneParams(_Strict):
    n_trials: int = Field(ge=2)
    n_startup_trials: int = Field(default=4, ge=1)  # random trials before TPE models the search space
    epochs: int = Field(ge=1)  # the most a trial trains (its learning-rate schedule spans this many)
    # successive halving: every trial trains min_epochs; at min_epochs x reduction_factor^k, only the
    # best 1/reduction_factor of the trials that reached that epoch go on (signkd.kd.tuning.pruner)
    min_epochs: int = Field(default=10, ge=1)
    reduction_factor: int = Field(default=3, ge=2, le=10)
    temperature_min: float = Field(gt=0.0)
    temperature_max: float = Field(gt=0.0)
    alpha_min: float = Field(default=0.3, ge=0.0, le=1.0)
    alpha_max: float = Field(default=0.9, ge=0.0, le=1.0)
    weight_max: float = Field(default=2.0, ge=0.0, le=100.0)  # level weights are searched in [0, weight_max]
    # SQLAlchemy URL of a shared Optuna storage ("" = a local SQLite study); OPTUNA_STORAGE overrides
    # it, and is where a password belongs (params are logged to MLflow)
    storage: str = ""

    @model_validator(mode="after")
    def _range_ordered(self):
        if self.n_startup_trials >= self.n_trials:
            raise ValueError(
                f"n_startup_trials ({self.n_startup_trials}) must be < n_trials ({self.n_trials}), "
                "or TPE never gets past its random start-up trials"
            )
        if self.min_epochs > self.epochs:
            raise ValueError(f"min_epochs ({self.min_epochs}) must be <= epochs ({self.epochs})")
        if self.alpha_min > self.alpha_max:
            raise ValueError(f"alpha_min ({self.alpha_min}) must be <= alpha_max ({self.alpha_max})")
        if self.temperature_min > self.temperature_max:
            raise ValueError(
                f"temperature_min ({self.temperature_min}) must be <= temperature_max ({self.temperature_max})"
            )
        return self


class DecodeParams(_Strict):
    method: Literal["greedy", "beam"]
    beam_width: int = Field(ge=1, le=256)


class LoaderParams(_Strict):
    """How training and evaluation read utterances (signkd.training.loader)."""

    workers: int = Field(default=0, ge=0, le=64)  # DataLoader worker processes; 0 = in the training process
    bucket: int = Field(default=0, ge=0, le=1000)  # batches per length-sorted window; 0 = plain shuffled batches
    prefetch: int = Field(default=2, ge=1, le=64)  # batches each worker reads ahead
    frame_cache: str = "data/frame_cache"  # resized frames kept per video; "" = decode the images on every read


class QuantizeParams(_Strict):
    latency_runs: int = Field(ge=1)


class CorrectParams(_Strict):
    pretrained: str
    pretrain_steps: int = Field(ge=1)
    finetune_steps: int = Field(ge=1)
    noise_samples: int = Field(ge=1)
    lr: float = Field(gt=0.0, le=1.0)
    batch_size: int = Field(ge=1)
    grammar_sentences: int = Field(default=20000, ge=1)  # synthetic corpus: pre-training draws from its grammar
    samples_per_video: int = Field(default=8, ge=1)  # sampled student hypotheses per train video (fine-tuning)
    sample_wer: float = Field(default=20.0, gt=0.0, lt=100.0)  # their target WER %, sets the sampling temperature
    num_beams: int = Field(default=4, ge=1)
    translate: bool = True  # gloss -> sentence step where the corpus has translations
    translate_steps: int = Field(default=200, ge=1)
    translate_lr: float = Field(default=0.003, gt=0.0, le=1.0)


class Params(_Strict):
    seed: int = Field(ge=0, le=2**32 - 1)  # NumPy's seed range: a larger one fails in `prepare`, after DVC deleted outputs
    data: DataParams
    validate_: ValidateParams = Field(alias="validate")  # `validate` is a pydantic method name
    keypoints: KeypointParams
    flow: FlowParams
    model: ModelParams
    augment: AugmentParams = AugmentParams()
    loader: LoaderParams = LoaderParams()
    teacher: TeacherParams
    student: StudentParams
    kd: KDParams
    tune: TuneParams
    decode: DecodeParams
    quantize: QuantizeParams
    correct: CorrectParams


class ParamsError(InputError, ValueError):
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


def parse_params(raw: object, source: Path = Path("params.yaml")) -> Params:
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
    return parse_params(read_yaml(path), path)


def read_yaml(path: Path) -> object:
    """yaml.safe_load of a file, with a syntax error or a non-UTF-8 byte reported as one line that
    names the file, line and column (YAML's own message is several lines with a caret)."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ParamsError(f"{path}: cannot be read ({err.strerror}); check its permissions") from None
    try:
        text = decode_utf8(raw)
    except NotUtf8 as err:
        raise ParamsError(f"{path} line {err.line}: byte 0x{err.byte:02x} is not UTF-8; "
                          "retype that line or re-save the file as UTF-8") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass: no code is evaluated)
    except _DuplicateKey as err:
        raise ParamsError(f"{path} line {err.line}: key '{err.key}' appears twice in the same mapping "
                          f"(first on line {err.first_line}); keep one (DVC refuses such a file too)") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        context = getattr(err, "context", None)
        raise ParamsError(
            f"{path}{where}: YAML syntax error: {problem}" + (f" ({context})" if context else "")
            + "; fix that line (indentation, a missing ':' or space after it, an unclosed quote or bracket)"
        ) from None


class _DuplicateKey(Exception):
    def __init__(self, key: str, line: int, first_line: int):
        super().__init__(key)
        self.key, self.line, self.first_line = key, line, first_line


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load keeps the last of two equal keys silently; params.yaml must not."""

    def construct_mapping(self, node, deep=False):
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                hash(key)
            except TypeError:
                continue  # SafeLoader itself reports an unhashable key
            if key in seen and key != "<<":
                raise _DuplicateKey(str(key), line, seen[key])
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


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
