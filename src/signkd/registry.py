"""MLflow model registry: the deployed student under a name, with a `champion` alias that only
ever moves to a model that is no worse on dev.

`quantize` logs the fp32 and the int8 ONNX student (MLflow's onnx flavour, with an input
signature whose time axis is free) and registers each as a new version of its registered model;
the alias `champion` moves to the new version only when its dev WER is no worse than the current
champion's (stored as a version tag), so a retrained but worse model never replaces a better one
behind `signkd recognize --model models:/<name>@champion`. Names carry the dataset, because a
WER on one corpus says nothing about a model of another.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHAMPION = "champion"
DEV_WER_TAG = "dev_wer"
MODEL_URI_SCHEMES = ("models:/", "runs:/")
log = logging.getLogger(__name__)


def registered_name(dataset: str, precision: str = "int8") -> str:
    """`signkd-<dataset>-student` for the deployed int8 model, `...-fp32` for its fp32 source."""
    return f"signkd-{dataset}-student" + ("" if precision == "int8" else f"-{precision}")


def signature(input_name: str, feature_dim: int, num_classes: int):
    """[batch, frames, features] float32 in, [batch, steps, classes] log-probabilities out;
    -1 marks the free axes (any number of frames)."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, -1, feature_dim), input_name)]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, -1, num_classes), "log_probs")]),
    )


def onnx_signature(path: str | Path):
    """The signature of an exported student, read from its ONNX graph."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    x, y = graph.input[0], graph.output[0]
    feature_dim = x.type.tensor_type.shape.dim[-1].dim_value
    num_classes = y.type.tensor_type.shape.dim[-1].dim_value
    return signature(x.name, feature_dim, num_classes)


@dataclass(frozen=True)
class Registration:
    name: str
    version: str
    dev_wer: float
    champion: bool  # whether `champion` now points at this version
    previous_champion: str | None


def log_and_register(onnx_path: str | Path, name: str, dev_wer: float, artifact_name: str) -> Registration:
    """Log `onnx_path` to the active run, register it as a new version of `name`, tag its dev WER
    and move `champion` to it if it is no worse than the current champion."""
    import mlflow
    import onnx

    info = mlflow.onnx.log_model(
        onnx.load(str(onnx_path)), name=artifact_name, signature=onnx_signature(onnx_path),
        registered_model_name=name, save_as_external_data=False,  # one self-contained file
    )
    client = mlflow.MlflowClient()
    version = str(info.registered_model_version)
    client.set_model_version_tag(name, version, DEV_WER_TAG, repr(float(dev_wer)))
    return promote_if_no_worse(client, name, version, dev_wer)


def promote_if_no_worse(client, name: str, version: str, dev_wer: float) -> Registration:
    """Point `champion` at `version` unless the current champion has a lower dev WER."""
    current = champion_version(client, name)
    best = math.inf if current is None else float(current.tags.get(DEV_WER_TAG, "inf"))
    promote = dev_wer <= best
    if promote:
        client.set_registered_model_alias(name, CHAMPION, version)
        log.info("%s version %s (dev WER %.2f) is now @%s", name, version, dev_wer, CHAMPION)
    else:
        log.info("%s version %s (dev WER %.2f) is worse than @%s version %s (%.2f): alias not moved",
                 name, version, dev_wer, CHAMPION, current.version, best)
    return Registration(name, version, float(dev_wer), promote, None if current is None else str(current.version))


def champion_version(client, name: str):
    """The version `champion` points at, or None (no such model or alias yet)."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException as err:
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def is_model_uri(text: str | os.PathLike) -> bool:
    return str(text).startswith(MODEL_URI_SCHEMES)


def download_onnx(uri: str, dst: str | Path | None = None) -> Path:
    """The ONNX file of a logged or registered model (`models:/<name>@champion`, `models:/<name>/3`,
    `runs:/<id>/<path>`), downloaded from the tracking store that MLFLOW_TRACKING_URI names (else
    the repository's own mlflow.db) into `dst` (default: a new temporary folder)."""
    import mlflow

    from signkd.tracking import tracking_uri

    uri_store = tracking_uri()
    if uri_store.startswith("sqlite:///") and not Path(uri_store[len("sqlite:///"):]).is_file():
        # opening a missing SQLite store would create an empty mlflow.db here (and find no model)
        raise FileNotFoundError(f"no MLflow store at {uri_store[len('sqlite:///'):]} to load {uri} from; set "
                                "MLFLOW_TRACKING_URI=sqlite:////path/to/your/repo/mlflow.db or pass an .onnx path")
    mlflow.set_tracking_uri(uri_store)
    mlflow.set_registry_uri(uri_store)
    dst = Path(dst) if dst is not None else Path(tempfile.mkdtemp(prefix="signkd-model-"))
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst)))
    files = [local] if local.is_file() else sorted(local.rglob("*.onnx"))
    if len(files) != 1:
        raise FileNotFoundError(f"{uri} holds {len(files)} .onnx files, expected one (in {local})")
    return files[0]
