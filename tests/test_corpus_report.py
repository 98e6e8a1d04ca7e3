"""The corpus report: statistics that agree with the manifests, and pictures of the synthetic corpus."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import imageio.v3 as iio
import numpy as np
import pytest
import yaml

from signkd.data.corpus_report import (
    CONTACT_SHEET,
    README_FILE,
    SENTENCE_GIF,
    SHEET_BACKGROUND,
    SHEET_COLUMNS,
    SHEET_GAP,
    SHEET_TITLE_HEIGHT,
    STATS_FILE,
    TILE_WIDTH,
    report_metrics,
    write_corpus_report,
)
from signkd.data.manifest import SPLITS, read_all, read_vocab
from signkd.data.registry import prepare_from_raw
from signkd.data.signs import vocabulary
from signkd.data.synthetic import ground_truth_path, render_corpus, split_sentences
from signkd.io import load_npz

TINY = dict(num_train=4, num_dev=2, num_test=2, num_signers=3, min_signs=2, max_signs=3, height=130, width=105)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    """A tiny signer-independent corpus, its manifests and its report."""
    root = tmp_path_factory.mktemp("report")
    paths = {"raw": root / "raw", "manifest": root / "manifest", "out": root / "reports" / "data"}
    render_corpus(paths["raw"], seed=3, progress=False, workers=1, split_mode="signer_independent", **TINY)
    prepare_from_raw("synthetic", paths["raw"], paths["manifest"])
    write_corpus_report(paths["raw"], paths["manifest"], paths["out"], dataset="synthetic")
    return paths


def _stats(out: Path) -> dict:
    return json.loads((out / STATS_FILE).read_text(encoding="utf-8"))


def test_report_files_exist(corpus):
    names = sorted(p.name for p in corpus["out"].iterdir())
    assert names == sorted([STATS_FILE, README_FILE, CONTACT_SHEET, SENTENCE_GIF])  # no temporary files left


def test_stats_match_the_manifests(corpus):
    stats, splits = _stats(corpus["out"]), read_all(corpus["manifest"])
    vocab = read_vocab(corpus["manifest"])
    assert stats["vocab_size"] == len(vocab) and stats["glosses"] == vocab
    assert stats["lexicon_size"] == len(vocabulary())
    assert stats["lexicon_unseen_in_train"] == sorted(set(vocabulary()) - set(vocab))
    for split in SPLITS:
        samples = splits[split]
        lengths, frames = [len(s.glosses) for s in samples], [s.num_frames for s in samples]
        assert stats["videos"][split] == len(samples)
        assert stats["sentence_length"][split] == {
            "min": min(lengths), "max": max(lengths), "mean": round(float(np.mean(lengths)), 2), "total": sum(lengths)}
        assert stats["frames_per_video"][split] == {
            "min": min(frames), "max": max(frames), "mean": round(float(np.mean(frames)), 2), "total": sum(frames)}
        assert sum(stats["gloss_frequency"][split].values()) == sum(lengths)
        assert sum(stats["signers"][split].values()) == len(samples)
    assert stats["split_mode"] == "signer_independent" and stats["held_out_signer"] == "Signer03"
    assert set(stats["signers"]["train"]) == {"Signer01", "Signer02"}
    assert stats["signers_unseen_in_train"] == {"dev": ["Signer03"], "test": ["Signer03"]}
    oov_tokens = sum(1 for s in splits["test"] for g in s.glosses if g not in set(vocab))
    assert stats["oov"]["test"]["tokens"] == oov_tokens
    meta = json.loads((corpus["raw"] / "corpus.json").read_text(encoding="utf-8"))
    assert stats["minimal_pairs"] == meta["minimal_pairs"]
    metrics = report_metrics(stats)
    videos = sum(len(v) for v in splits.values())
    assert metrics["mean_sentence_length"] == round(sum(len(s.glosses) for v in splits.values() for s in v) / videos, 2)
    assert metrics["num_signers"] == 3 and metrics["vocab_size"] == len(vocab)
    assert metrics["minimal_pairs_handshape"] == len(meta["minimal_pairs"]["handshape"])
    for split in SPLITS:  # gloss tokens per split, the resolution of every WER on it
        assert metrics[f"{split}_tokens"] == sum(len(s.glosses) for s in splits[split]) > 0


def _split_tokens(params: dict, split: str, count: int) -> int:
    syn = params["data"]["synthetic"]
    return sum(len(s.glosses) for s in split_sentences(params["seed"], split, count, syn["min_signs"], syn["max_signs"]))


def test_evaluation_sets_have_power():
    """The default run's test set keeps at least 300 sentences (~1,000 tokens: one error moves WER
    by 0.1 point), and the studies' (params/study.yaml over params.yaml) at least 3,000 test tokens
    and a dev set of 100 sentences / 300 tokens; counted by the renderer's own sentence draw."""
    root = Path(__file__).resolve().parents[1]
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    if params["data"]["dataset"] != "synthetic":
        pytest.skip("the default dataset is not the synthetic corpus")
    default = params["data"]["synthetic"]
    assert default["num_test"] >= 300 and _split_tokens(params, "test", default["num_test"]) >= 900
    study = default | yaml.safe_load((root / "params" / "study.yaml").read_text(encoding="utf-8"))["data"]["synthetic"]
    assert _split_tokens(params, "test", study["num_test"]) >= 3000
    assert study["num_dev"] >= 100 and _split_tokens(params, "dev", study["num_dev"]) >= 300
    for split in ("train", "dev", "test"):  # the studies extend the default corpus, never shrink it
        assert study[f"num_{split}"] >= default[f"num_{split}"], split


def test_readme_tables(corpus):
    text = (corpus["out"] / README_FILE).read_text(encoding="utf-8")
    stats = _stats(corpus["out"])
    assert f"| train | {stats['videos']['train']} |" in text
    assert "Signers never seen in train: dev: Signer03; test: Signer03" in text
    assert f"![contact sheet]({CONTACT_SHEET})" in text and f"![sentence]({SENTENCE_GIF})" in text
    for kind in stats["minimal_pairs"]:
        assert f"| {kind} |" in text


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of True."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2], edges[1::2]))


def test_contact_sheet_has_one_tile_per_gloss(corpus):
    sheet = cv2.imread(str(corpus["out"] / CONTACT_SHEET))
    body = sheet[SHEET_TITLE_HEIGHT:]
    background = (body == SHEET_BACKGROUND).all(axis=2)
    rows = _runs(~background.all(axis=1))
    cols = _runs(~background.all(axis=0))
    assert len(cols) == SHEET_COLUMNS and all(b - a == TILE_WIDTH for a, b in cols)
    assert sheet.shape[1] == SHEET_COLUMNS * (TILE_WIDTH + SHEET_GAP) + SHEET_GAP
    tiles = sum(not background[r0:r1, c0:c1].all() for r0, r1 in rows for c0, c1 in cols)
    assert tiles == len(vocabulary())


def test_sentence_gif_shows_the_first_test_video_with_its_glosses(corpus):
    sample = read_all(corpus["manifest"])["test"][0]
    frames = iio.imread(corpus["out"] / SENTENCE_GIF, index=None)
    assert frames.shape[0] == sample.num_frames
    spans = load_npz(ground_truth_path(corpus["raw"], sample.id))["gloss_spans"]
    assert len(spans) == len(sample.glosses)

    def has_red_label(frame: np.ndarray) -> bool:  # the gloss being signed is red in the top band
        top = frame[:30].astype(int)
        return bool(((top[..., 0] > 180) & (top[..., 1] < 60) & (top[..., 2] < 60)).any())

    assert not has_red_label(frames[0])  # the signer starts at rest
    for start, end in spans:
        assert has_red_label(frames[(start + end) // 2])
    assert not np.array_equal(frames[spans[0][0]][-44:], frames[spans[-1][0]][-44:])  # different gloss below


def test_real_dataset_gets_stats_without_pictures(corpus, tmp_path):
    raw = tmp_path / "real"
    shutil.copytree(corpus["raw"], raw)
    (raw / "corpus.json").unlink()
    manifest = tmp_path / "manifest"
    prepare_from_raw("phoenix2014t", raw, manifest)
    out = tmp_path / "reports" / "data"
    shutil.copytree(corpus["out"], out)  # pictures left from an earlier synthetic run
    stats = write_corpus_report(raw, manifest, out, dataset="phoenix2014t")
    assert sorted(p.name for p in out.iterdir()) == sorted([STATS_FILE, README_FILE])
    assert stats == _stats(out)
    assert stats["dataset"] == "phoenix2014t" and stats["minimal_pairs"] == {} and stats["split_mode"] is None
    assert "lexicon_size" not in stats and stats["videos"] == _stats(corpus["out"])["videos"]
    text = (out / README_FILE).read_text(encoding="utf-8")
    assert "![" not in text and "Minimal pairs" not in text
    assert "split_mode" not in report_metrics(stats)
