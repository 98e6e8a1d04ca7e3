"""The studies' extra test set: rendered apart, yet the same videos a larger default test split holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from signkd.data.manifest import write_manifest
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
from signkd.experiment import vocabulary
from signkd.io import load_npz
from signkd.params import load_params
from signkd.studies.common import study_splits
from signkd.studies.corpus import MANIFEST, render_test_extension
from tests.tiny_workspace import write_params

SETTINGS = dict(num_signers=3, min_signs=1, max_signs=2, height=130, width=105)
SEED, DEFAULT_TEST, EXTRA = 5, 2, 3


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> dict[str, Path]:
    """The default corpus (2 test videos) with a 3-video extension, and one corpus of 5 test videos."""
    root = tmp_path_factory.mktemp("study")
    out = {"default": root / "ws" / "data" / "raw" / "synthetic", "extension": root / "ws" / "data" / "study" / "raw" / "synthetic",
           "big": root / "big"}
    render_corpus(out["default"], seed=SEED, num_train=2, num_dev=1, num_test=DEFAULT_TEST, progress=False, workers=1, **SETTINGS)
    render_test_extension(out["extension"], seed=SEED, first=DEFAULT_TEST, count=EXTRA, progress=False, workers=2, **SETTINGS)
    render_corpus(out["big"], seed=SEED, num_train=2, num_dev=1, num_test=DEFAULT_TEST + EXTRA, progress=False, workers=1,
                  **SETTINGS)
    return out


def test_extension_is_frame_for_frame_the_larger_test_split(corpora):
    extension = read_phoenix2014t_split(corpora["extension"], "test")
    big = read_phoenix2014t_split(corpora["big"], "test")[DEFAULT_TEST:]
    assert [s.id for s in extension] == [s.id for s in big] == [f"synth_test_{i:05d}" for i in range(2, 5)]
    for ours, theirs in zip(extension, big):
        assert (ours.glosses, ours.signer, ours.translation, ours.num_frames) == \
            (theirs.glosses, theirs.signer, theirs.translation, theirs.num_frames)
        a, b = frames_path(corpora["extension"], "test", ours.id), frames_path(corpora["big"], "test", ours.id)
        assert [p.read_bytes() for p in sorted(a.iterdir())] == [p.read_bytes() for p in sorted(b.iterdir())]
        truth_a, truth_b = load_npz(ground_truth_path(corpora["extension"], ours.id)), load_npz(ground_truth_path(corpora["big"], ours.id))
        assert truth_a.keys() == truth_b.keys()
        for key in truth_a:
            np.testing.assert_array_equal(truth_a[key], truth_b[key])


def test_progress_counts_the_frames_a_video_will_have(corpora):
    """The render bar's total is planned before rendering; it must be each video's real length."""
    signers = make_signers(SEED, SETTINGS["num_signers"])
    sentences = split_sentences(SEED, "test", DEFAULT_TEST + EXTRA, SETTINGS["min_signs"], SETTINGS["max_signs"])
    lengths = []
    for i, sentence in enumerate(sentences):
        job = RenderJob(Path("."), "test", i, SEED, sentence.glosses, signers[i % 3], RenderParams(height=130, width=105))
        rendered = len(list(frames_path(corpora["big"], "test", f"synth_test_{i:05d}").iterdir()))
        assert planned_frames(job) == rendered
        lengths.append(rendered)
    assert len(set(lengths)) > 1  # videos differ in length: counting videos would mislead the ETA


def test_studies_test_on_the_default_test_set_then_the_extension(corpora, monkeypatch):
    workspace = corpora["default"].parents[2]
    overrides = {"seed": SEED, "data": {"synthetic": {"num_train": 2, "num_dev": 1, "num_test": DEFAULT_TEST, **SETTINGS}},
                 "study": {"extra_test": EXTRA}}
    write_params(workspace, overrides)
    monkeypatch.chdir(workspace)
    prepare_from_raw("synthetic", corpora["default"].relative_to(workspace), "data/manifest")
    write_manifest(MANIFEST, "test", read_phoenix2014t_split(corpora["extension"].relative_to(workspace), "test"))
    params = load_params("params.yaml")
    items = study_splits(params, vocabulary(params), ("video",))
    assert [it.id for it in items["test"]] == [f"synth_test_{i:05d}" for i in range(5)]
    assert [it.id for it in items["dev"]] == ["synth_dev_00000"]

    # an extension made for other settings (here: one sentence more wanted) is refused, not mixed in
    write_params(workspace, overrides | {"study": {"extra_test": EXTRA + 1}})
    with pytest.raises(InputError, match="study_corpus") as err:
        study_splits(load_params("params.yaml"), vocabulary(params), ("video",))
    assert "\n" not in str(err.value)
