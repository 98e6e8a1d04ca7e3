"""What running MediaPipe on every n-th frame costs the keypoint student, trained for it.

MediaPipe is nearly all of `signkd recognize`'s time, and its cost falls with the share of frames
it runs on. A student that will see only every n-th frame's landmarks (the rest interpolated)
should be trained on exactly that (`student.frame_stride`, `signkd.features.keypoints.thinned`);
this study trains the deployable keypoint student without distillation at each stride, for
each seed, and reports test WER like the other studies. Seed 1's model at each stride is also
exported to ONNX (`models/studies/frame_stride/stride<n>.onnx`), so that
`benchmarks/realtime.py --model ...` measures `recognize`'s real-time factor with a model
trained for its stride.

  reports/frame_stride/metrics.json   {"stride<n>": {"test_wer_mean", "test_wer_std", "test_wer_ci_low",
                                                     "test_wer_ci_high", "seeds", ...}}
  reports/frame_stride/README.md      the table

Run: `python -m signkd.studies.frame_stride --seeds 1 2 3 --strides 1 2 3` (cached, resumable).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, cast

from signkd.experiment import (
    decoding,
    keypoint_dim,
    new_model,
    scoring_clean,
    student_config,
    train_config,
)
from signkd.io import write_json, write_text
from signkd.params import Params
from signkd.studies.common import (
    STUDENT_SECTIONS,
    cached,
    markdown_table,
    run_key,
    study_splits,
    study_vocabulary,
    summarize,
    test_record,
    with_updates,
)
from signkd.studies.corpus import study_params
from signkd.training.trainer import evaluate, train

STUDY_DIR = Path("models/studies/frame_stride")
REPORT_DIR = Path("reports/frame_stride")


def train_one(params: Params, export_to: Path | None) -> dict:
    """The keypoint student (no KD) on keypoints thinned to `student.frame_stride`."""
    from signkd.quantize import export_onnx
    from signkd.training.data import collate

    vocab = study_vocabulary(params)
    items = study_splits(params, vocab, ("keypoints",), student=True)
    config = student_config(params, keypoint_dim(params), vocab)
    model = new_model(config, params.seed)
    result = train(model, items["train"], items["dev"], vocab, train_config(params, params.student), None, None,
                   f"stride {params.student.frame_stride} seed {params.seed}")
    test, hyps = evaluate(model, items["test"], vocab, decoding(params), scoring_clean(params))
    if export_to is not None:
        export_onnx(model, collate(items["dev"][:1])["keypoints"], export_to, config)
    return {"dev_wer": result.best_dev_wer, "test_wer": test.wer, "best_epoch": result.best_epoch,
            **test_record(items["test"], hyps, scoring_clean(params))}


def run(params: Params, seeds: list[int], strides: list[int]) -> dict:
    runs: dict[str, list[dict]] = {}
    for stride in strides:
        name = f"stride{stride}"
        for seed in seeds:
            ps = with_updates(params, student={"modality": "keypoints", "frame_stride": stride}).model_copy(update={"seed": seed})
            export_to = STUDY_DIR / f"{name}.onnx" if seed == seeds[0] else None
            # cast: mypy cannot infer a lambda with default arguments against Callable[[], dict]
            run_one = cast(Callable[[], dict], lambda ps=ps, e=export_to: train_one(ps, e))
            runs.setdefault(name, []).append(cached(STUDY_DIR, name, seed, run_key(ps, name, seed, sections=STUDENT_SECTIONS), run_one))
    summary = {name: {**summarize(rs), "seed_wers": [round(r["test_wer"], 3) for r in rs]} for name, rs in runs.items()}
    write_json(REPORT_DIR / "metrics.json", summary)
    labels = {f"stride{s}": f"MediaPipe on every {s}. frame" if s > 1 else "MediaPipe on every frame" for s in strides}
    write_text(REPORT_DIR / "README.md", "\n".join([
        "# Frame stride: the keypoint student trained for MediaPipe on every n-th frame", "",
        f"No distillation; seeds {seeds}; 95% CI = bootstrap over test utterances of the mean over seeds. "
        "Real-time factors per stride: reports/recognize/. Written by `python -m signkd.studies.frame_stride`; "
        "do not edit.", "", markdown_table(summary, labels), ""]))
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--strides", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    summary = run(study_params(args.params), args.seeds, args.strides)
    print({k: v["test_wer_mean"] for k, v in summary.items()})


if __name__ == "__main__":
    main()
