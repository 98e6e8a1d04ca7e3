"""Glue shared by the training stages: load splits, configure training, evaluate, save."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import mlflow
from torch import nn

from signkd.data.manifest import read_manifest, read_vocab
from signkd.io import write_text
from signkd.models.checkpoint import build_model, model_size_mb, save_checkpoint
from signkd.models.recognizer import MODALITIES, count_parameters
from signkd.params import Params, TrainParams
from signkd.scoring import write_official_files
from signkd.training.data import FeatureSource, Item, Vocabulary, load_items
from signkd.training.kd import HKDLoss, KDConfig, attach_teacher_outputs
from signkd.training.trainer import TrainConfig, TrainResult, evaluate, set_seed, train

MODELS_DIR = Path("models")
REPORTS_DIR = Path("reports")


def log_epoch(epoch: int, record: dict[str, float]) -> None:
    mlflow.log_metrics({k: v for k, v in record.items() if k != "epoch"}, step=epoch)


def vocabulary(params: Params) -> Vocabulary:
    return Vocabulary(read_vocab(params.data.manifest_dir))


def feature_source(params: Params) -> FeatureSource:
    return FeatureSource(
        Path(params.keypoints.out_dir), Path(params.flow.out_dir), params.model.frame_height, params.model.frame_width,
        tuple(params.model.keypoint_parts),
    )


def load_splits(params: Params, vocab: Vocabulary, modalities: tuple[str, ...], splits=("train", "dev", "test")) -> dict[str, list[Item]]:
    source = feature_source(params)
    return {
        split: load_items(
            read_manifest(params.data.manifest_dir, split), vocab, source, modalities, train=split == "train", desc=f"load {split}"
        )
        for split in splits
    }


def new_model(config: dict, seed: int) -> nn.Module:
    """Build a model from its config with freshly seeded weights (same seed, same init)."""
    set_seed(seed)
    return build_model(config)


def keypoint_dim(items: dict[str, list[Item]]) -> int:
    return int(items["train"][0].tensors["keypoints"].shape[1])


def teacher_config(params: Params, kp_dim: int, vocab: Vocabulary) -> dict:
    return {
        "kind": "teacher",
        "keypoint_dim": kp_dim,
        "keypoint_parts": list(params.model.keypoint_parts),
        "hidden": params.model.hidden,
        "num_classes": vocab.num_classes,
        "fusion": params.teacher.fusion,
        "dropout": params.model.dropout,
        "cnn_width": params.model.cnn_width,
        "modality_dropout": params.teacher.modality_dropout,
        "vocab": vocab.glosses,
    }


def student_config(params: Params, kp_dim: int, vocab: Vocabulary) -> dict:
    return {
        "kind": "student",
        "keypoint_dim": kp_dim,
        "keypoint_parts": list(params.model.keypoint_parts),
        "hidden": params.model.student_hidden,
        "num_classes": vocab.num_classes,
        "dropout": params.model.dropout,
        "vocab": vocab.glosses,
    }


def load_distillation_data(params: Params, vocab: Vocabulary, teacher: nn.Module) -> dict[str, list[Item]]:
    """Train items carry the frozen teacher's outputs; dev/test only the student's keypoints."""
    items = load_splits(params, vocab, MODALITIES, splits=("train",))
    attach_teacher_outputs(teacher, items["train"])
    items.update(load_splits(params, vocab, ("keypoints",), splits=("dev", "test")))
    return items


def distill_student(
    params: Params, items: dict[str, list[Item]], vocab: Vocabulary, teacher_config: dict, temperature: float,
    epochs: int | None = None, on_epoch=log_epoch, desc: str = "distill",
) -> tuple[nn.Module, TrainResult, dict]:
    """Train a fresh student with the HKD objective; returns it with its training record and config."""
    config = student_config(params, keypoint_dim(items), vocab)
    student = new_model(config, params.seed)
    kd = params.kd
    loss = HKDLoss(
        config["hidden"], teacher_config["hidden"],
        KDConfig(alpha=kd.alpha, temperature=temperature, level_weights=kd.level_weights.model_dump()),
    )
    result = train(student, items["train"], items["dev"], vocab, train_config(params, kd, epochs), loss, on_epoch, desc)
    return student, result, config


def train_config(params: Params, section: TrainParams, epochs: int | None = None) -> TrainConfig:
    return TrainConfig(
        epochs=epochs or section.epochs,
        lr=section.lr,
        batch_size=section.batch_size,
        seed=params.seed,
        decoder=params.decode.method,
        beam_width=params.decode.beam_width,
        clean=scoring_clean(params),
    )


def scoring_clean(params: Params) -> str:
    """The official clean-up for the dataset: the Phoenix kit's rules for Phoenix, none otherwise."""
    return "phoenix" if params.data.dataset.startswith("phoenix") else "none"


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
            result, hyps[split] = evaluate(
                model, items[split], vocab, params.decode.method, params.decode.beam_width, scoring_clean(params)
            )
            metrics.update(result.as_metrics(split))
    return metrics, hyps


def save_model(stage: str, model: nn.Module, config: dict) -> dict[str, float]:
    weights = save_checkpoint(model, config, MODELS_DIR / stage)
    mlflow.log_artifact(str(weights.parent / "model.json"))
    return {"model_size_mb": round(model_size_mb(weights), 4), "num_parameters": count_parameters(model)}


def finish_training(
    stage: str, params: Params, model: nn.Module, config: dict, items: dict[str, list[Item]], vocab: Vocabulary,
    result: TrainResult,
) -> dict:
    """What every training stage does after training: curve, dev/test WER, test hypotheses
    (+ CTM/STM), checkpoint; returns the stage's metrics."""
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
