"""Run only the correction step on the pipeline's outputs and print its figures.

Needs what `dvc repro` left behind: models/quantize/student_int8.onnx, data/manifest and the
features in data/. It runs exactly what the `correct` stage runs (the stage's own input loading
and `signkd.correction.pipeline.run`) but writes nothing, logs nothing to MLflow and leaves
models/ and reports/ alone, so settings can be tried without touching the DVC state:

    python benchmarks/correction_probe.py
    python benchmarks/correction_probe.py --set pretrain_steps=1200 --set sample_wer=30 --threads 2
    python benchmarks/correction_probe.py --json all_metrics.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("test_wer_before", "test_wer_after", "test_wer_relative_change", "test_wer_ci_low_after",
        "test_wer_ci_high_after", "test_changed", "test_fixed", "test_broken", "test_correct_unchanged_share",
        "test_errors_grammatical", "test_errors_ungrammatical", "test_wer_oracle",
        "dev_wer_before", "dev_wer_after", "dev_changed", "margin", "sample_temperature", "sample_wer",
        "sample_sub", "sample_del", "sample_ins", "test_sub_before", "test_del_before", "test_ins_before",
        "test_bleu", "test_bleu_before", "test_bleu_ref_glosses", "test_chrf")


def _stage_module():
    sys.path.insert(0, str(ROOT / "stages"))  # the stage script imports its sibling `_env`
    spec = importlib.util.spec_from_file_location("stage_correct", ROOT / "stages" / "correct.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--int8", default="models/quantize/student_int8.onnx")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a `correct:` parameter (YAML value), e.g. pretrain_steps=300")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--json", help="also write every metric to this file")
    args = parser.parse_args(argv)

    from signkd.correction.pipeline import examples_markdown, run
    from signkd.experiment import scoring_clean
    from signkd.params import CorrectParams, load_params

    if args.threads:
        torch.set_num_threads(args.threads)
    params = load_params(args.params)
    over = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set {item!r}: expected KEY=VALUE")
        over[key.removeprefix("correct.")] = yaml.safe_load(value)
    cfg = CorrectParams.model_validate({**params.correct.model_dump(), **over})
    if not Path(args.int8).is_file():
        print(f"{args.int8} missing: run `dvc repro quantize` first", file=sys.stderr)
        return 1
    started = time.perf_counter()
    data, glosses, grammar, _ = _stage_module().correction_inputs(params, Path(args.int8))
    loaded = time.perf_counter() - started
    outcome = run(cfg, data, glosses, seed=params.seed, clean=scoring_clean(params), grammar=grammar)
    m = {**outcome.metrics, "seconds_inputs": round(loaded, 2),
         "seconds_total": round(time.perf_counter() - started, 2)}
    for key in (*KEYS, *sorted(k for k in m if k.startswith("seconds_"))):
        if key in m:
            print(f"{key:32s} {m[key]}")
    if args.json:
        Path(args.json).write_text(json.dumps(m, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print()
    print(examples_markdown(data["test"], outcome.corrected["test"], outcome.translated.get("test", []), m,
                            calibration=outcome.calibration))
    return 0


if __name__ == "__main__":
    sys.exit(main())
