"""The studies' corpus: the default one plus more videos, for power, without taxing the first run.

The default corpus (params.yaml: 160 train, 100 dev, 300 test sentences) is sized for a first
`dvc repro`; its 300 test sentences still give the pipeline's own figures useful intervals. A
claim between two models needs more (at least 3,000 test tokens), so the studies run on the sizes
of their profile, params/study.yaml (160 / 100 / 1,000). This stage
renders only the videos the default corpus lacks (index num_<split> of params.yaml up to the
profile's), and extracts their keypoints and flow, into data/study/; what the default run made is
read where it lies, never rendered or extracted again. Every video is drawn from (seed, split,
index) alone, so a study split is, frame for frame, the split a corpus of the profile's size would
have (tests/test_study_corpus.py).

    data/study/raw/synthetic/   Phoenix-2014T layout with the extra videos, ground_truth/, corpus.json
    data/study/manifest/<split>.csv
    data/study/keypoints/, data/study/flow/   per-video features, the default run's settings

Run: `dvc repro studies/dvc.yaml:study_corpus` (every study stage depends on it).
"""

from __future__ import annotations

from pathlib import Path

from signkd.data.manifest import SPLITS, write_manifest
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
from signkd.tracking import flat_metrics

STAGE = "study_corpus"
PROFILE = Path("params/study.yaml")
ROOT = Path("data/study")
RAW = ROOT / "raw" / "synthetic"
MANIFEST = ROOT / "manifest"
KEYPOINTS = ROOT / "keypoints"
FLOW = ROOT / "flow"


def study_params(params_path: str | Path = "params.yaml") -> Params:
    """params.yaml with the studies' profile applied, validated: what every study runs with."""
    from signkd.profiles import check

    return check(PROFILE, Path(params_path))


def split_size(params: Params, split: str) -> int:
    return getattr(params.data.synthetic, f"num_{split}")


def render_extension(out_root: Path, *, seed: int, ranges: dict[str, range], num_signers: int, min_signs: int,
                     max_signs: int, height: int, width: int, split_mode: str = "multi_signer",
                     test_signer: int | None = None, workers: int | None = None, progress: bool = True) -> dict:
    """Videos `ranges[split]` of each split of the synthetic corpus with these settings, in its
    layout (an annotation file per split, maybe empty), replacing `out_root` atomically; returns
    what corpus.json holds."""
    check_render_args(seed, {}, num_signers, min_signs, max_signs, height, width)
    signers = make_signers(seed, num_signers)
    pools = split_signers(split_mode, test_signer, num_signers)
    params = RenderParams(height=height, width=width)
    jobs, rows = [], {}
    with atomic_dir(out_root) as tmp:
        for split in SPLITS:
            indices = ranges.get(split, range(0))
            if indices.start < 0 or indices.step != 1:
                raise ValueError(f"{split}: videos must be a range of indices >= 0, got {indices}")
            sentences = split_sentences(seed, split, indices.stop, min_signs, max_signs)
            new_jobs, rows[split] = split_jobs(tmp, seed, split, indices, sentences, [signers[i] for i in pools[split]],
                                               params)
            jobs += new_jobs
        frames = render_jobs(jobs, workers or default_workers(), progress)
        for split in SPLITS:
            write_annotation_csv(annotation_path(tmp, split), rows[split])
        description = {"dataset": "synthetic", "seed": seed, "extends": "the default corpus (params.yaml)",
                       "videos": {split: [r.start, r.stop] for split, r in ranges.items()}, "frames": sum(frames)}
        write_json(tmp / "corpus.json", description)
    return description


def check_synthetic(params: Params) -> None:
    if params.data.dataset != "synthetic":
        raise InputError(f"the multi-seed studies run on the synthetic corpus, but data.dataset is "
                         f"'{params.data.dataset}'; set data.dataset: synthetic for them")


def extension_ranges(default: Params, study: Params) -> dict[str, range]:
    """The videos of each split that the study has and the default corpus lacks."""
    ranges = {}
    for split in SPLITS:
        first, stop = split_size(default, split), split_size(study, split)
        if stop < first:
            raise InputError(f"{PROFILE} asks for {stop} {split} videos, fewer than params.yaml's "
                             f"data.synthetic.num_{split} ({first}); the studies extend the default corpus: "
                             f"raise num_{split} in {PROFILE}")
        ranges[split] = range(first, stop)
    return ranges


def build(params: Params) -> dict:
    """Render the extension, write its manifests, extract its features (resumable per video)."""
    study = study_params()
    check_synthetic(params)
    syn = study.data.synthetic
    ranges = extension_ranges(params, study)
    render_extension(RAW, seed=study.seed, ranges=ranges, num_signers=syn.num_signers, min_signs=syn.min_signs,
                     max_signs=syn.max_signs, height=syn.height, width=syn.width, split_mode=syn.split_mode,
                     test_signer=syn.test_signer)
    samples = []
    for split in SPLITS:
        # a split the profile does not enlarge has an annotation file with no videos: nothing to read
        split_samples = read_phoenix2014t_split(RAW, split) if len(ranges[split]) else []
        write_manifest(MANIFEST, split, split_samples)
        samples += split_samples
    kp, fl = study.keypoints, study.flow
    # on_error fail, whatever the params say: a study's splits must be the same for every model
    keypoints = extract_keypoints(samples, KEYPOINTS, workers=kp.workers, on_error="fail", max_gap=kp.max_gap)
    flow = extract_flow(samples, FLOW, method=fl.method, height=fl.height, width=fl.width, workers=fl.workers,
                        on_error="fail")
    counts = {f"extra_{split}": len(r) for split, r in ranges.items()}
    return counts | {"videos": len(samples), "frames": sum(s.num_frames for s in samples),
                     "study_test_sentences": split_size(study, "test"),
                     "keypoints_frames_per_second": keypoints["frames_per_second"],
                     "flow_frames_per_second": flow["frames_per_second"]} | flat_metrics(keypoints["detection_rate"], "hand_detection_rate_")


def ground_truth_roots(params: Params) -> tuple[Path, Path]:
    """Where a study video's renderer ground truth lies: the default corpus, then the extension."""
    return Path(params.data.raw_dir) / "synthetic", RAW


if __name__ == "__main__":
    from signkd.stage import run_stage

    run_stage(STAGE, build)
