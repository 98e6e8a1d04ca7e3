"""The `correct` stage script around the correction step: inputs from the one inference path,
outputs where `dvc.yaml`, `report` and `signkd recognize` look for them."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach a model hub

import numpy as np
import pytest

from signkd.correction import GlossCorrector
from signkd.correction.pipeline import Grammar
from signkd.correction.translate import GlossTranslator
from signkd.inference import DecodeConfig, glosses_from_log_probs, transcribe
from signkd.stage import run_stage
from signkd.training.data import Item
from tests.test_correction_fakes import GLOSSES, grammar_split, posteriors
from tests.tiny_workspace import ROOT, stage_main, write_params

TINY = {"pretrain_steps": 3, "finetune_steps": 3, "noise_samples": 200, "batch_size": 8, "grammar_sentences": 500,
        "samples_per_video": 2, "num_beams": 1, "translate_steps": 3}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def stage():
    """The stage script's globals (it imports its sibling `_env`, so stages/ goes on the path)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(ROOT / "stages"))
        yield stage_main("correct").__globals__


def test_posteriors_kept_are_those_the_hypotheses_came_from(stage):
    lps = [posteriors(["MORGEN", "REGEN"]), posteriors(["NORD", "SONNE", "STARK"])]

    class Fixed:
        def log_probs(self, items):
            return lps[: len(items)]

    kept = stage["_Kept"](Fixed())
    items = [Item(f"i{k}", (), []) for k in range(2)]
    hyps = transcribe(kept, items, GLOSSES, DecodeConfig("greedy", 1))
    assert hyps == [["MORGEN", "REGEN"], ["NORD", "SONNE", "STARK"]]
    assert kept.last is not None and [glosses_from_log_probs(lp, GLOSSES, DecodeConfig("greedy", 1))
                                      for lp in kept.last] == hyps


def test_stage_writes_models_metrics_and_examples(tmp_path, monkeypatch, stage):
    write_params(tmp_path, {"correct": TINY})
    (tmp_path / "models/quantize").mkdir(parents=True)
    (tmp_path / "models/quantize/student_int8.onnx").write_bytes(b"\0" * 2048)
    train, dev, test = grammar_split(1, 16), grammar_split(2, 8), grammar_split(3, 8)
    train.log_probs = [posteriors(r) for r in train.refs]
    dev.hyps[0], test.hyps[0] = dev.hyps[0][:-1], test.hyps[0][1:]  # some errors to score
    test_items = [Item(i, tuple(r), []) for i, r in zip(test.ids, test.refs)]
    data = {"train": train, "dev": dev, "test": test}
    monkeypatch.setitem(stage, "correction_inputs", lambda params: (data, GLOSSES, Grammar(1234, 2, 5), test_items))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_stage("correct", stage["main"], "params.yaml")

    metrics = json.loads((tmp_path / "reports/correct/metrics.json").read_text())
    for key in ("dev_wer_before", "dev_wer_after", "test_wer_before", "test_wer_after", "test_wer_ci_low_after",
                "test_wer_ci_high_after", "test_wer_ci_low_before", "test_correct_unchanged_share", "dev_changed",
                "test_changed", "test_bleu", "test_bleu_ci_low", "test_chrf", "dev_bleu", "margin",
                "pipeline_size_mb", "sample_temperature", "wall_time_s"):
        assert key in metrics, key
    # the student's test hypotheses are the references but for one deleted gloss: 1 error in all the words
    assert metrics["test_wer_before"] == pytest.approx(100.0 / sum(len(r) for r in test.refs), abs=1e-3)
    assert metrics["dev_wer_before"] == pytest.approx(100.0 / sum(len(r) for r in dev.refs), abs=1e-3)
    examples = (tmp_path / "reports/correct/examples.md").read_text()
    assert "| id | reference | student | corrected | verdict | sentence |" in examples
    assert (tmp_path / "reports/correct/test_hyp.txt").is_file() and (tmp_path / "reports/correct/test.ctm").is_file()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    history = client.get_metric_history(run.info.run_id, "pretrain_loss")
    assert sorted(m.step for m in history) == [1, 2, 3]  # the whole curve, logged in one batch
    corrector = GlossCorrector.load(tmp_path / "models/correct")  # what `signkd recognize` loads
    assert corrector.vocab == GLOSSES and np.isfinite(corrector.model_size_mb())
    translator = GlossTranslator.load(tmp_path / "models/correct/translator")
    assert len(translator.translate([["MORGEN", "REGEN"]], num_beams=1)) == 1
