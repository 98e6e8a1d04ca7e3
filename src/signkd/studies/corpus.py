"""The studies' extra test sentences: power for multi-seed claims, without taxing the first run.

The default corpus keeps `data.synthetic.num_test` test sentences (300: enough for the pipeline's
own intervals, small enough for a first `dvc repro` of about 20 minutes on two cores). A claim
between two models needs more (at least 3,000 test tokens), so the studies add `study.extra_test`
sentences: test sentences num_test, num_test + 1, ... of the same seed. This stage alone renders
them and extracts their keypoints and flow, into data/study/; what the default run made is read
where it lies, never rendered or extracted again. Every video is drawn from (seed, split, index)
only, so default test + extension is, frame for frame, the test split of a corpus rendered with
num_test + extra_test sentences (tests/test_study_corpus.py).

    data/study/raw/synthetic/   Phoenix-2014T layout with a test split only, ground_truth/, corpus.json
    data/study/manifest/test.csv
    data/study/keypoints/, data/study/flow/   per-video features, the default run's settings

Run: `dvc repro studies/dvc.yaml:study_corpus` (every study stage depends on it).
"""

from __future__ import annotations

from pathlib import Path

from signkd.data.manifest import write_manifest
from signkd.data.phoenix import read_phoenix2014t_split
from signkd.data.render import RenderParams
from signkd.data.synthetic import (
    annotation_path,
    check_render_args,
    default_workers,
    make_signers,
    render_jobs,
    split_jobs,
    split_sentences,
    split_signers,
    write_annotation_csv,
)
from signkd.errors import InputError
from signkd.features.flow import extract_flow
from signkd.features.keypoints import extract_keypoints
from signkd.io import atomic_dir, write_json
from signkd.params import Params

STAGE = "study_corpus"
ROOT = Path("data/study")
RAW = ROOT / "raw" / "synthetic"
MANIFEST = ROOT / "manifest"
KEYPOINTS = ROOT / "keypoints"
FLOW = ROOT / "flow"


def render_test_extension(out_root: Path, *, seed: int, first: int, count: int, num_signers: int, min_signs: int,
                          max_signs: int, height: int, width: int, split_mode: str = "multi_signer",
                          test_signer: int | None = None, workers: int | None = None, progress: bool = True) -> dict:
    """Test videos first .. first + count - 1 of the synthetic corpus with these settings, in its
    layout (test split only), replacing `out_root` atomically; returns what corpus.json holds."""
    check_render_args(seed, {"count": count}, num_signers, min_signs, max_signs, height, width)
    if first < 0:
        raise ValueError(f"first must be >= 0, got {first}")
    pool = [make_signers(seed, num_signers)[i] for i in split_signers(split_mode, test_signer, num_signers)["test"]]
    sentences = split_sentences(seed, "test", first + count, min_signs, max_signs)
    with atomic_dir(out_root) as tmp:
        jobs, rows = split_jobs(tmp, seed, "test", range(first, first + count), sentences, pool,
                                RenderParams(height=height, width=width))
        frames = render_jobs(jobs, workers or default_workers(), progress)
        write_annotation_csv(annotation_path(tmp, "test"), rows)
        description = {"dataset": "synthetic", "seed": seed, "extends": "the default corpus's test split",
                       "first_index": first, "videos": count, "frames": sum(frames)}
        write_json(tmp / "corpus.json", description)
    return description


def check_synthetic(params: Params) -> None:
    if params.data.dataset != "synthetic":
        raise InputError(f"the multi-seed studies run on the synthetic corpus, but data.dataset is "
                         f"'{params.data.dataset}'; set data.dataset: synthetic for them")


def build(params: Params) -> dict:
    """Render the extension, write its manifest and extract its features (resumable per video)."""
    check_synthetic(params)
    syn, count = params.data.synthetic, params.study.extra_test
    samples = []
    if count:
        render_test_extension(RAW, seed=params.seed, first=syn.num_test, count=count, num_signers=syn.num_signers,
                              min_signs=syn.min_signs, max_signs=syn.max_signs, height=syn.height, width=syn.width,
                              split_mode=syn.split_mode, test_signer=syn.test_signer)
        samples = read_phoenix2014t_split(RAW, "test")
    write_manifest(MANIFEST, "test", samples)
    kp, fl = params.keypoints, params.flow
    # on_error fail, whatever the params say: a study's test set must be the same for every model
    keypoints = extract_keypoints(samples, KEYPOINTS, workers=kp.workers, on_error="fail", max_gap=kp.max_gap)
    flow = extract_flow(samples, FLOW, method=fl.method, height=fl.height, width=fl.width, workers=fl.workers,
                        on_error="fail")
    return {"videos": len(samples), "frames": sum(s.num_frames for s in samples),
            "test_tokens": sum(len(s.glosses) for s in samples),
            "keypoints_frames_per_second": keypoints["frames_per_second"],
            "hand_detection_rate": keypoints["detection_rate"], "flow_frames_per_second": flow["frames_per_second"]}


def ground_truth_roots(params: Params) -> tuple[Path, Path]:
    """Where a study test video's renderer ground truth lies: the default corpus, then the extension."""
    return Path(params.data.raw_dir) / "synthetic", RAW


if __name__ == "__main__":
    from signkd.stage import run_stage

    run_stage(STAGE, build)
