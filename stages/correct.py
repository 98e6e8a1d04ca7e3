"""Stage correct: a seq2seq model fixes the int8 student's gloss errors, and glosses become a sentence.

What it trains on never contains a dev or test sentence (`signkd.correction.data.LeakGuard`):
denoising pre-training on sentences from the synthetic corpus's grammar (a real corpus: its
train references) with KD-MSLRT noise, unless `correct.pretrained` names a checkpoint to start
from; fine-tuning on hypotheses sampled from the int8 student's own posteriors on train videos
(the student trained on them, so its 1-best there is nearly error-free; see `correction.data`).
The gate is calibrated on dev so that correction never raises the dev WER; test is held out.
Where the corpus has translations, a translator of the same kind turns the corrected glosses
into a German sentence, scored with sacreBLEU and chrF.
"""

import time
from pathlib import Path

import _env  # noqa: F401  (first: a clear message outside the virtual environment)
import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from signkd.correction.pipeline import Grammar, SplitData, examples_markdown, run
from signkd.data.manifest import read_manifest
from signkd.experiment import REPORTS_DIR, decoding, load_splits, scoring_clean, vocabulary, write_hypotheses
from signkd.inference import OnnxBackend, transcribe
from signkd.io import write_text
from signkd.models.checkpoint import model_size_mb
from signkd.params import Params
from signkd.stage import run_stage

STAGE = "correct"
INT8 = Path("models/quantize/student_int8.onnx")
OUT = Path("models/correct")
SPLITS = ("train", "dev", "test")


class _Kept:
    """Passes a backend through and keeps the posteriors of its last call, so the train videos'
    posteriors (sampled for fine-tuning) come from the same `transcribe` pass as the hypotheses."""

    def __init__(self, backend):
        self.backend = backend
        self.last: list = []

    def log_probs(self, items):
        self.last = self.backend.log_probs(items)
        return self.last


def correction_inputs(params: Params, int8: Path = INT8):
    """Per split: references, the int8 student's hypotheses, translations, and the train posteriors;
    the vocabulary, the grammar (synthetic corpus only) and the test items."""
    vocab = vocabulary(params)
    items = load_splits(params, vocab, (params.student.modality,), student=True)
    runner = _Kept(OnnxBackend(int8))
    data = {}
    for split in SPLITS:
        hyps = transcribe(runner, items[split], vocab.glosses, decoding(params))
        text = {s.id: s.translation for s in read_manifest(params.data.manifest_dir, split)}
        data[split] = SplitData([it.id for it in items[split]], [list(it.glosses) for it in items[split]], hyps,
                                [text.get(it.id, "") for it in items[split]],
                                runner.last if split == "train" else None)
    syn = params.data.synthetic
    grammar = Grammar(params.seed, syn.min_signs, syn.max_signs) if params.data.dataset == "synthetic" else None
    return data, list(vocab.glosses), grammar, items["test"]


def _log_curves(curves: dict[str, list[tuple[int, float]]]) -> None:
    """Loss curves to MLflow in batches: one call per step would cost seconds of SQLite writes."""
    now = int(time.time() * 1000)
    points = [Metric(f"{name}_loss", loss, now, step) for name, curve in curves.items() for step, loss in curve]
    client, run_id = MlflowClient(), mlflow.active_run().info.run_id
    for start in range(0, len(points), 1000):  # MLflow's limit per batch
        client.log_batch(run_id, metrics=points[start : start + 1000])


def main(params: Params) -> dict:
    data, glosses, grammar, test_items = correction_inputs(params)
    clean = scoring_clean(params)
    outcome = run(params.correct, data, glosses, seed=params.seed, clean=clean, grammar=grammar)
    _log_curves(outcome.curves)
    outcome.corrector.save(OUT)
    if outcome.translator is not None:
        outcome.translator.save(OUT / "translator")
    write_text(REPORTS_DIR / STAGE / "examples.md", examples_markdown(
        data["test"], outcome.corrected["test"], outcome.translated.get("test", []), outcome.metrics,
        calibration=outcome.calibration))
    write_hypotheses(STAGE, test_items, outcome.corrected["test"], "test", clean)
    size = outcome.corrector.model_size_mb()
    metrics = {**outcome.metrics, "model_size_mb": round(size, 4),
               "pipeline_size_mb": round(size + model_size_mb(INT8), 4)}
    if outcome.translator is not None:
        metrics["translator_size_mb"] = round(outcome.translator.seq2seq.model_size_mb(), 4)
    return metrics


if __name__ == "__main__":
    run_stage(STAGE, main)
