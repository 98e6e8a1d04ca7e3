"""The studies' extra test set: rendered apart, yet the same videos a larger default test split holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from signkd.data.manifest import SPLITS, write_manifest
from signkd.data.phoenix import read_phoenix2014t_split
from signkd.data.registry import prepare_from_raw
from signkd.data.render import RenderParams
from signkd.data.synthetic import (
    RenderJob,
    frames_path,
    ground_truth_path,
    make_signers,
    planned_frames,
    render_corpus,
    split_sentences,
)
from signkd.errors import InputError
from signkd.io import load_npz
from signkd.studies.common import study_splits, study_vocabulary
from signkd.studies.corpus import MANIFEST, render_extension, study_params
from tests.tiny_workspace import write_params

SETTINGS = dict(num_signers=3, min_signs=1, max_signs=2, height=130, width=105)
SEED = 5
DEFAULT = {"train": 2, "dev": 1, "test": 2}  # params.yaml's corpus
STUDY = {"train": 3, "dev": 2, "test": 5}    # the profile's


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> dict[str, Path]:
    """The default corpus with the study's extension (rendered apart), and one corpus of the study's size."""
    root = tmp_path_factory.mktemp("study")
    ws = root / "ws"
    out = {"default": ws / "data" / "raw" / "synthetic", "extension": ws / "data" / "study" / "raw" / "synthetic",
           "big": root / "big"}
    sizes = lambda n: {f"num_{split}": count for split, count in n.items()}  # noqa: E731
    render_corpus(out["default"], seed=SEED, progress=False, workers=1, **sizes(DEFAULT), **SETTINGS)
    render_extension(out["extension"], seed=SEED, ranges={s: range(DEFAULT[s], STUDY[s]) for s in SPLITS},
                     progress=False, workers=2, **SETTINGS)
    render_corpus(out["big"], seed=SEED, progress=False, workers=1, **sizes(STUDY), **SETTINGS)
    return out


@pytest.mark.parametrize("split", SPLITS)
def test_extension_is_frame_for_frame_the_larger_split(corpora, split):
    extension = read_phoenix2014t_split(corpora["extension"], split)
    big = read_phoenix2014t_split(corpora["big"], split)[DEFAULT[split]:]
    assert [s.id for s in extension] == [s.id for s in big] == [f"synth_{split}_{i:05d}" for i in range(DEFAULT[split], STUDY[split])]
    for ours, theirs in zip(extension, big):
        assert (ours.glosses, ours.signer, ours.translation, ours.num_frames) == \
            (theirs.glosses, theirs.signer, theirs.translation, theirs.num_frames)
        a, b = frames_path(corpora["extension"], split, ours.id), frames_path(corpora["big"], split, ours.id)
        assert [p.read_bytes() for p in sorted(a.iterdir())] == [p.read_bytes() for p in sorted(b.iterdir())]
        truth_a, truth_b = load_npz(ground_truth_path(corpora["extension"], ours.id)), load_npz(ground_truth_path(corpora["big"], ours.id))
        assert truth_a.keys() == truth_b.keys()
        for key in truth_a:
            np.testing.assert_array_equal(truth_a[key], truth_b[key])


def test_progress_counts_the_frames_a_video_will_have(corpora):
    """The render bar's total is planned before rendering; it must be each video's real length."""
    signers = make_signers(SEED, SETTINGS["num_signers"])
    sentences = split_sentences(SEED, "test", STUDY["test"], SETTINGS["min_signs"], SETTINGS["max_signs"])
    lengths = []
    for i, sentence in enumerate(sentences):
        job = RenderJob(Path("."), "test", i, SEED, sentence.glosses, signers[i % 3], RenderParams(height=130, width=105))
        rendered = len(list(frames_path(corpora["big"], "test", f"synth_test_{i:05d}").iterdir()))
        assert planned_frames(job) == rendered
        lengths.append(rendered)
    assert len(set(lengths)) > 1  # videos differ in length: counting videos would mislead the ETA


def _workspace(corpora, study_test: int) -> Path:
    workspace = corpora["default"].parents[2]
    syn = {f"num_{s}": n for s, n in DEFAULT.items()} | SETTINGS
    write_params(workspace, {"seed": SEED, "data": {"synthetic": syn}})
    (workspace / "params").mkdir(exist_ok=True)
    study = {f"num_{s}": n for s, n in STUDY.items()} | {"num_test": study_test}
    (workspace / "params" / "study.yaml").write_text(yaml.safe_dump({"data": {"synthetic": study}}))
    return workspace


def test_studies_run_on_the_default_videos_then_the_extension(corpora, monkeypatch):
    workspace = _workspace(corpora, STUDY["test"])
    monkeypatch.chdir(workspace)
    prepare_from_raw("synthetic", corpora["default"].relative_to(workspace), "data/manifest")
    for split in SPLITS:
        write_manifest(MANIFEST, split, read_phoenix2014t_split(corpora["extension"].relative_to(workspace), split))
    params = study_params()
    assert (params.data.synthetic.num_train, params.data.synthetic.num_test) == (STUDY["train"], STUDY["test"])
    vocab = study_vocabulary(params)
    big_train = read_phoenix2014t_split(corpora["big"], "train")
    assert vocab.glosses == sorted({g for s in big_train for g in s.glosses})  # prepare's rule on the big corpus
    items = study_splits(params, vocab, ("video",))
    for split in SPLITS:
        assert [it.id for it in items[split]] == [f"synth_{split}_{i:05d}" for i in range(STUDY[split])]
    assert items["test"][-1].frames_dir.startswith(str(Path("data/study")))  # read where the extension made it

    # an extension made for other settings (here: one test sentence more wanted) is refused, not mixed in
    _workspace(corpora, STUDY["test"] + 1)
    with pytest.raises(InputError, match="study_corpus") as err:
        study_splits(study_params(), vocab, ("video",))
    assert "\n" not in str(err.value)


def test_build_extends_only_the_splits_the_profile_enlarges(tmp_path, monkeypatch):
    """The real profile adds test sentences only: the other splits' annotation files are empty,
    and build must still write their (empty) manifests and extract just the new videos."""
    from signkd.params import load_params
    from signkd.studies.corpus import build

    monkeypatch.chdir(tmp_path)
    render_corpus(Path("data/raw/synthetic"), seed=SEED, progress=False, workers=1,
                  **{f"num_{s}": n for s, n in DEFAULT.items()}, **SETTINGS)
    prepare_from_raw("synthetic", Path("data/raw/synthetic"), "data/manifest")
    write_params(tmp_path, {"seed": SEED, "data": {"synthetic": {f"num_{s}": n for s, n in DEFAULT.items()} | SETTINGS},
                            "keypoints": {"workers": 1}, "flow": {"workers": 1}})
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "study.yaml").write_text(yaml.safe_dump({"data": {"synthetic": {"num_test": DEFAULT["test"] + 1}}}))
    metrics = build(load_params())
    assert (metrics["extra_train"], metrics["extra_dev"], metrics["extra_test"], metrics["videos"]) == (0, 0, 1, 1)
    new = f"synth_test_{DEFAULT['test']:05d}"
    assert [s.id for s in read_phoenix2014t_split(Path("data/study/raw/synthetic"), "test")] == [new]
    assert sorted(p.stem for p in Path("data/study/keypoints").rglob("*.npz")) == [new]
    from signkd.data.manifest import read_manifest

    assert [len(read_manifest(MANIFEST, s)) for s in SPLITS] == [0, 0, 1]  # the studies read these after data/manifest
