"""Glue shared by the training stages: load splits, configure training, evaluate, save."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import mlflow
from torch import nn

from signkd.data.manifest import read_manifest, read_vocab
from signkd.features.keypoints import PARTS
from signkd.inference import DecodeConfig
from signkd.io import write_text
from signkd.models.checkpoint import build_model, model_size_mb, save_checkpoint
from signkd.models.recognizer import count_parameters
from signkd.models.spec import FORMAT_VERSION, ModelSpec, Preprocessing, StudentArchitecture, TeacherArchitecture
from signkd.params import Params, TrainParams
from signkd.scoring import write_official_files
from signkd.seeding import set_seed
from signkd.tracking import is_main_process
from signkd.training.augment import AugmentConfig
from signkd.training.data import FeatureSource, Item, Vocabulary, load_items
from signkd.training.loader import LoaderConfig
from signkd.training.trainer import TrainConfig, TrainResult, evaluate

MODELS_DIR = Path("models")
REPORTS_DIR = Path("reports")


def log_epoch(epoch: int, record: dict[str, float]) -> None:
    mlflow.log_metrics({k: v for k, v in record.items() if k != "epoch"}, step=epoch)


def vocabulary(params: Params) -> Vocabulary:
    return Vocabulary(read_vocab(params.data.manifest_dir))


def feature_source(params: Params, keypoint_stride: int = 1) -> FeatureSource:
    cache = params.loader.frame_cache
    return FeatureSource(
        Path(params.keypoints.out_dir), Path(params.flow.out_dir), params.model.frame_height, params.model.frame_width,
        tuple(params.model.keypoint_parts), keypoint_stride, Path(cache) if cache else None,
    )


def loader_config(params: Params) -> LoaderConfig:
    return LoaderConfig(params.loader.workers, params.loader.bucket, params.loader.prefetch)


def load_splits(params: Params, vocab: Vocabulary, modalities: tuple[str, ...], splits=("train", "dev", "test"),
                *, student: bool = False) -> dict[str, list[Item]]:
    """Features of each split; `student`: as the deployable student sees them (`student.frame_stride`)."""
    source = feature_source(params, params.student.frame_stride if student else 1)
    return {
        split: load_items(
            read_manifest(params.data.manifest_dir, split), vocab, source, modalities, train=split == "train", desc=f"load {split}"
        )
        for split in splits
    }


def new_model(config: ModelSpec, seed: int) -> nn.Module:
    """Build a model from its spec with freshly seeded weights (same seed, same init)."""
    set_seed(seed)
    return build_model(config)


def keypoint_dim(params: Params) -> int:
    """Model input width of the keypoint stream: x, y and a visibility flag per chosen joint."""
    return 3 * sum(PARTS[p].stop - PARTS[p].start for p in params.model.keypoint_parts)


def decoding(params: Params) -> DecodeConfig:
    return DecodeConfig(params.decode.method, params.decode.beam_width)


def preprocessing(params: Params, frame_stride: int = 1) -> Preprocessing:
    """How raw video became this model's input: stored in its checkpoint, so that `recognize`
    and `quantize` rebuild exactly the features (and decoding) it was trained and selected with."""
    return Preprocessing(
        keypoint_parts=tuple(params.model.keypoint_parts),
        max_gap=params.keypoints.max_gap,
        frame_stride=frame_stride,
        fps=params.data.fps,  # the training videos' rate: recognize resamples any input to it
        frame_height=params.model.frame_height,
        frame_width=params.model.frame_width,
        decode_method=params.decode.method,
        beam_width=params.decode.beam_width,
        **keypoint_backend(params),
    )


def keypoint_backend(params: Params) -> dict:
    """Which extractor made the keypoints; for tasks also each model file (path, url and sha256),
    so that `recognize` runs that very model and refuses another."""
    if params.keypoints.backend == "holistic":
        return {"keypoint_backend": "holistic", "keypoint_models": {}}
    from signkd.features.model_files import recorded

    return {"keypoint_backend": "tasks", "keypoint_models": recorded(params.keypoints.tasks.model_dump())}


def video_backbone(params: Params) -> dict:
    """The RGB frame encoder, and the local pretrained weights a fresh model starts from (a saved
    checkpoint is rebuilt without reading that file again)."""
    return {"video_backbone": params.model.video_backbone, "video_backbone_weights": params.model.video_backbone_weights}


def teacher_config(params: Params, kp_dim: int, vocab: Vocabulary) -> ModelSpec:
    """The teacher's spec: every model built, saved and exported from params goes through here or `student_config`."""
    return ModelSpec(
        format_version=FORMAT_VERSION,
        vocab=tuple(vocab.glosses),
        preprocessing=preprocessing(params),
        architecture=TeacherArchitecture(
            kind="teacher",
            keypoint_dim=kp_dim,
            hidden=params.model.hidden,
            num_classes=vocab.num_classes,
            fusion=params.teacher.fusion,
            modalities=tuple(params.teacher.modalities),
            dropout=params.model.dropout,
            cnn_width=params.model.cnn_width,
            modality_dropout=params.teacher.modality_dropout,
            **video_backbone(params),
        ),
    )


def student_config(params: Params, kp_dim: int, vocab: Vocabulary) -> ModelSpec:
    """The student's spec; its preprocessing carries `student.frame_stride`, which `recognize` applies."""
    return ModelSpec(
        format_version=FORMAT_VERSION,
        vocab=tuple(vocab.glosses),
        preprocessing=preprocessing(params, params.student.frame_stride),
        architecture=StudentArchitecture(
            kind="student",
            modality=params.student.modality,
            cnn_width=params.model.cnn_width,
            keypoint_dim=kp_dim,
            hidden=params.model.student_hidden,
            num_classes=vocab.num_classes,
            dropout=params.model.dropout,
            **video_backbone(params),
        ),
    )


def train_config(params: Params, section: TrainParams, epochs: int | None = None) -> TrainConfig:
    return TrainConfig(
        epochs=epochs or section.epochs,
        lr=section.lr,
        batch_size=section.batch_size,
        seed=params.seed,
        decoding=decoding(params),
        augment=AugmentConfig(**params.augment.model_dump()),
        clean=scoring_clean(params),
        schedule=section.schedule,
        milestones=tuple(section.milestones),
        gamma=section.gamma,
        weight_decay=section.weight_decay,
        loader=loader_config(params),
    )


def scoring_clean(params: Params) -> str:
    """The dataset's official clean-up: each Phoenix kit's own rules (they differ), none otherwise."""
    return {"phoenix2014": "phoenix2014", "phoenix2014t": "phoenix2014t"}.get(params.data.dataset, "none")


def write_curve(stage: str, history: list[dict[str, float]]) -> Path:
    """reports/<stage>/curve.csv: one row per epoch, a DVC plot."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0].keys()), lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    path = REPORTS_DIR / stage / "curve.csv"
    write_text(path, buf.getvalue())
    return path


def score_splits(model: nn.Module, items: dict[str, list[Item]], vocab: Vocabulary, params: Params) -> tuple[dict[str, float], dict[str, list[list[str]]]]:
    """dev/test WER (percent) with substitution/deletion/insertion counts, and the hypotheses."""
    metrics: dict[str, float] = {}
    hyps: dict[str, list[list[str]]] = {}
    for split in ("dev", "test"):
        if split in items:
            result, hyps[split] = evaluate(model, items[split], vocab, decoding(params), scoring_clean(params),
                                           loader_config(params))
            metrics.update(result.as_metrics(split))
    return metrics, hyps


def save_model(stage: str, model: nn.Module, config: ModelSpec) -> dict[str, float]:
    weights = save_checkpoint(model, config, MODELS_DIR / stage)
    mlflow.log_artifact(str(weights.parent / "model.json"))
    return {"model_size_mb": round(model_size_mb(weights), 4), "num_parameters": count_parameters(model)}


def finish_training(
    stage: str, params: Params, model: nn.Module, config: ModelSpec, items: dict[str, list[Item]], vocab: Vocabulary,
    result: TrainResult,
) -> dict:
    """What every training stage does after training: curve, dev/test WER, test hypotheses
    (+ CTM/STM), checkpoint; returns the stage's metrics. Under torchrun only rank 0 does this
    (every rank holds the same trained weights); the others return no metrics."""
    if not is_main_process():
        return {}
    write_curve(stage, result.history)
    metrics, hyps = score_splits(model, items, vocab, params)
    write_hypotheses(stage, items["test"], hyps["test"], "test", scoring_clean(params))
    return {**metrics, **save_model(stage, model, config), "best_epoch": result.best_epoch}


def write_hypotheses(stage: str, items: list[Item], hyps: list[list[str]], split: str, clean: str) -> Path:
    """reports/<stage>/<split>_hyp.txt (id | reference | hypothesis, for error analysis) and the
    split's CTM/STM pair, which `sclite -h <split>.ctm ctm -r <split>.stm stm` scores identically."""
    lines = [f"{it.id}|{' '.join(it.glosses)}|{' '.join(h)}" for it, h in zip(items, hyps)]
    path = REPORTS_DIR / stage / f"{split}_hyp.txt"
    write_text(path, "id|reference|hypothesis\n" + "\n".join(lines) + "\n")
    write_official_files(
        REPORTS_DIR / stage, split, [it.id for it in items], [list(it.glosses) for it in items], hyps, clean=clean
    )
    return path
