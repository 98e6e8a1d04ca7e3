"""The one path from features to gloss hypotheses.

Training-time evaluation, every stage's dev/test scoring, `tune`, `quantize`, `correct` and
`signkd recognize` all call `transcribe` (or `score`, which adds the official WER). Only the
backend that turns a model input into per-step log-probabilities differs: a PyTorch model
(batched; the models are padding-independent, so batching does not change a hypothesis) or an
ONNX Runtime session (one utterance at a time, as deployed). Model inputs are built by the same
`pad_inputs` that training's `collate` uses, so an exported model sees exactly the tensors it was
trained on. This module imports torch only for a PyTorch backend: `recognize` never needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Protocol, Sequence

import numpy as np

from signkd.decode import decode
from signkd.model_input import pad_inputs
from signkd.models.spec import ModelSpec, SpecError, migrate
from signkd.scoring import WerResult, official_wer

if TYPE_CHECKING:
    from torch import nn

    from signkd.training.data import Item
    from signkd.training.loader import LoaderConfig

CONFIG_KEY = "signkd_config"  # ONNX metadata entry holding the model spec (vocabulary, preprocessing, architecture)


@dataclass(frozen=True)
class DecodeConfig:
    method: str = "beam"  # greedy | beam
    beam_width: int = 5


class LogProbBackend(Protocol):
    def log_probs(self, items: Sequence[Item]) -> list[np.ndarray]:
        """Per item, the sequence head's log-probabilities over its valid steps: [T', C]."""


class TorchBackend:
    """A PyTorch recogniser in eval mode, run on padded batches."""

    def __init__(self, model: nn.Module, batch_size: int = 8, loader: LoaderConfig | None = None):
        self.model = model
        self.batch_size = batch_size
        self.loader = loader

    def log_probs(self, items: Sequence[Item]) -> list[np.ndarray]:
        import torch

        from signkd.training.data import to_device
        from signkd.training.loader import LoaderConfig, batches

        was_training = self.model.training
        self.model.eval()
        device = next(self.model.parameters()).device
        result: list[np.ndarray] = []
        try:
            # the configured workers, but no bucketing: hypotheses come back in the items' order
            workers = self.loader.workers if self.loader is not None else 0
            for batch in batches(list(items), self.batch_size, loader=LoaderConfig(workers=workers)):
                with torch.no_grad():
                    out = self.model(to_device(batch, device))
                lp = out.seq_logits.log_softmax(-1).cpu().numpy()
                result.extend(lp[i, :n] for i, n in enumerate(out.lengths.tolist()))
        finally:
            self.model.train(was_training)
        return result


class OnnxBackend:
    """An exported recogniser under ONNX Runtime on the CPU, one unpadded utterance at a time."""

    def __init__(self, path: str | Path, threads: int = 1):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    @property
    def config(self) -> ModelSpec | None:
        """The spec the exporter stored in the model, or None for a foreign ONNX file."""
        stored = self.session.get_modelmeta().custom_metadata_map.get(CONFIG_KEY)
        return None if stored is None else spec_from_metadata(stored, str(self.path))

    def run(self, item: Item) -> np.ndarray:
        return self.run_arrays({k: v.numpy() for k, v in item.inputs().items()}, item.id)

    def run_arrays(self, tensors: Mapping[str, np.ndarray], name: str = "?") -> np.ndarray:
        """[T', C] log-probabilities of one utterance given its unscaled inputs (as stored)."""
        batch = pad_inputs([tensors])
        missing = [i for i in self.inputs if i not in batch]
        if missing:
            raise ValueError(f"{self.path} needs input(s) {missing}, but sample {name} has {sorted(tensors)}")
        return self.session.run(None, {i: batch[i] for i in self.inputs})[0][0]

    def log_probs(self, items: Sequence[Item]) -> list[np.ndarray]:
        return [self.run(it) for it in items]


def spec_from_metadata(text: str, source: str) -> ModelSpec:
    """The spec in an ONNX file's CONFIG_KEY entry; files exported before the spec existed are migrated."""
    import json

    try:
        raw = json.loads(text)
    except ValueError as err:
        raise SpecError(f"{source}: the {CONFIG_KEY} metadata is not JSON ({err})") from None
    return migrate(raw, f"{source} ({CONFIG_KEY})")


def glosses_from_log_probs(log_probs: np.ndarray, glosses: Sequence[str], decoding: DecodeConfig) -> list[str]:
    """Decode one utterance; class c > 0 is glosses[c - 1], class 0 the CTC blank."""
    return [glosses[c - 1] for c in decode(log_probs, decoding.method, decoding.beam_width)]


def transcribe(backend: LogProbBackend, items: Sequence[Item], glosses: Sequence[str], decoding: DecodeConfig) -> list[list[str]]:
    """Gloss hypotheses, one list per item."""
    return [glosses_from_log_probs(lp, glosses, decoding) for lp in backend.log_probs(items)]


def score(
    backend: LogProbBackend, items: Sequence[Item], glosses: Sequence[str], decoding: DecodeConfig, clean: str = "none"
) -> tuple[WerResult, list[list[str]]]:
    """Official (sclite-equivalent) WER of the hypotheses against the items' references."""
    hyps = transcribe(backend, items, glosses, decoding)
    return official_wer([list(it.glosses) for it in items], hyps, clean=clean), hyps
