"""What every multi-seed study shares: variant params, cached runs, seed summaries, charts.

A claim about two models needs more than one seed on one small test set, so each study trains
every model with several seeds and reports the mean test WER, its spread over seeds, and a 95%
bootstrap interval of that mean over test utterances (resampling the same utterances for every
seed, so the interval reflects the test set's size as well as the seeds). Each finished run is
recorded in a ledger committed with the code (`LEDGER`), keyed on everything that shapes it, so an
interrupted study resumes, in a later session or on another machine.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from signkd.data.manifest import SPLITS, manifest_path, read_manifest
from signkd.data.synthetic import video_name
from signkd.errors import InputError
from signkd.experiment import feature_source
from signkd.io import write_json
from signkd.params import Params
from signkd.scoring import utterance_counts
from signkd.studies import corpus
from signkd.studies.intervals import paired_difference, verdict, wer_intervals
from signkd.training.data import Item, Vocabulary, load_items

ALL_INPUTS = ("video", "keypoints", "flow")


def with_updates(params: Params, **sections: Any) -> Params:
    """A copy of params with some fields of some sections replaced (params are frozen), validated
    as params.yaml is (nested sections such as kd.level_weights given as dicts)."""
    updates = {}
    for name, fields in sections.items():
        current = getattr(params, name)
        updates[name] = type(current).model_validate({**current.model_dump(), **fields}) if hasattr(current, "model_copy") else fields
    return params.model_copy(update=updates)


def only(items: list[Item], modalities: tuple[str, ...]) -> list[Item]:
    """The same items reading only the inputs a model uses (the rest is neither read nor collated)."""
    return [it.restricted(modalities) for it in items]


def load_all(params: Params, vocab: Vocabulary) -> dict[str, list[Item]]:
    """Every split's items with every input, test including the studies' extra sentences, shared by
    the teachers and students of a study (each reads only the modalities it needs, per batch: see `only`)."""
    if params.student.frame_stride != 1:
        raise InputError(f"student.frame_stride is {params.student.frame_stride}: the studies share one "
                         "every-frame load between teachers and students; run them with student.frame_stride: 1")
    return study_splits(params, vocab, ALL_INPUTS)


def study_vocabulary(params: Params) -> Vocabulary:
    """The glosses of the study's train split (default + extension), sorted: `prepare`'s rule, so a
    study has the classes a corpus of its size would have."""
    return Vocabulary(sorted({g for s in _study_samples(params, "train")[0] for g in s.glosses}))


def _study_samples(params: Params, split: str) -> tuple[list, int]:
    """The study's samples of a split: the default manifest's, then the extension's; refused unless
    they are exactly videos 0 .. num_<split> - 1 of the profile (a stale extension is not mixed in).
    Another dataset (e.g. your own videos) is studied as it was prepared, without an extension.
    Also returns how many come from the default corpus."""
    samples = read_manifest(params.data.manifest_dir, split)
    default = len(samples)
    if params.data.dataset != "synthetic":
        return samples, default
    extension = manifest_path(corpus.MANIFEST, split)
    if extension.is_file():
        samples = samples + read_manifest(corpus.MANIFEST, split)
    expected = [video_name(split, i) for i in range(corpus.split_size(params, split))]
    if [s.id for s in samples] != expected:
        state = "is missing" if not extension.is_file() else "was made for other settings"
        raise InputError(f"the studies' {split} split ({params.data.manifest_dir} + {extension}) {state}: run "
                         f"`dvc repro studies/dvc.yaml:{corpus.STAGE}` (the make targets of the studies do)")
    return samples, default


def study_splits(params: Params, vocab: Vocabulary, modalities: tuple[str, ...], *, student: bool = False) -> dict[str, list[Item]]:
    """train, dev and test as the studies see them (`params`: the study's, see corpus.study_params):
    each the default corpus's videos, then the extension's, features read from where each was made."""
    stride = params.student.frame_stride if student else 1
    extension = params.model_copy(update={"keypoints": params.keypoints.model_copy(update={"out_dir": str(corpus.KEYPOINTS)}),
                                          "flow": params.flow.model_copy(update={"out_dir": str(corpus.FLOW)})})
    sources = {"default": feature_source(params, stride), "extension": feature_source(extension, stride)}
    out = {}
    for split in SPLITS:
        samples, default = _study_samples(params, split)
        parts = ((samples[:default], sources["default"], f"load {split}"), (samples[default:], sources["extension"], f"load study {split}"))
        out[split] = [item for part, source, desc in parts if part
                      for item in load_items(part, vocab, source, modalities, train=split == "train", desc=desc)]
    return out


# The params sections that shape each kind of run (a run is keyed on these only, so that changing
# e.g. the distillation settings does not retrain the single-stream teachers of the modality study).
_INPUTS = ("data", "keypoints", "flow", "model", "augment", "decode")
TEACHER_SECTIONS = _INPUTS + ("teacher",)
STUDENT_SECTIONS = _INPUTS + ("student",)
KD_SECTIONS = _INPUTS + ("teacher", "student", "kd")


def run_key(params: Params, name: str, seed: int, extra: dict | None = None, *, sections: tuple[str, ...]) -> str:
    """Everything that shapes a run: the params `sections` it depends on, the variant name, seed
    and extras."""
    dumped = {k: v for k, v in params.model_dump(mode="json", by_alias=True).items() if k in sections}
    blob = json.dumps({"params": dumped, "name": name, "seed": seed, "extra": extra or {}}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# Each finished run's record (key, dev and test WER, per-utterance test errors; no weights) is
# committed under studies/runs/<study>/: a five-seed study outlasts a working session, and the
# checkpoints under models/studies/ do not outlive the machine that trained them. A run is
# redone only when its key (everything that shapes it) changes.
LEDGER = Path("studies/runs")


def record_path(study_dir: Path, name: str, seed: int) -> Path:
    return LEDGER / Path(study_dir).name / f"{name}-seed{seed}.json"


def stored(study_dir: Path, name: str, seed: int, key: str) -> dict | None:
    """The run's record if one with this key is in the ledger."""
    path = record_path(study_dir, name, seed)
    if path.is_file():
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("key") == key:
            return record
    return None


def machine() -> dict:
    """Where a run was made (numbers differ across CPUs and torch builds, never within one)."""
    import platform

    import torch

    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__,
            "python": platform.python_version()}


def cached(study_dir: Path, name: str, seed: int, key: str, run: Callable[[], dict]) -> dict:
    """The run's record from the ledger if its key matches, else run it and record it."""
    hit = stored(study_dir, name, seed, key)
    if hit is not None:
        return hit
    result = {"key": key, "name": name, "seed": seed, **run(), "machine": machine()}
    write_json(record_path(study_dir, name, seed), result)
    return result


def digest(record: dict) -> str:
    """A fingerprint of a run's outcome: what a run that builds on it (a student distilled from a
    teacher) is keyed on, so a teacher refitted elsewhere with a different outcome redoes its students."""
    blob = json.dumps([record["key"], record["dev_wer"], record["test_errors"]])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def test_record(items: list[Item], hyps: list[list[str]], clean: str) -> dict:
    """Per-utterance counts of a run's test hypotheses (what the seed summary resamples)."""
    counts = utterance_counts([list(it.glosses) for it in items], hyps, clean=clean)
    return {"test_ids": [it.id for it in items], "test_hyps": [" ".join(h) for h in hyps],
            "test_errors": [s + d + i for s, d, i, _ in counts], "test_ref_words": [n for *_, n in counts]}


def _stacked(runs: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """errors [seeds, utterances] and ref_words [utterances] of one model's runs."""
    ids = runs[0]["test_ids"]
    if any(r["test_ids"] != ids for r in runs):
        raise ValueError("runs of one model were scored on different test sets")
    return (np.array([r["test_errors"] for r in runs], dtype=np.int64),
            np.array(runs[0]["test_ref_words"], dtype=np.int64))


def summarize(runs: list[dict]) -> dict:
    """Mean, std and intervals of one model's test WER over its runs (seeds), on one test set:
    `test_wer_ci_*` counts seeds and utterances, `test_wer_utt_ci_*` utterances only
    (signkd.studies.intervals)."""
    errors, refs = _stacked(runs)
    wers = errors.sum(1) / refs.sum() * 100.0
    ci = wer_intervals(errors, refs)
    return {"test_wer_mean": round(float(wers.mean()), 3), "test_wer_std": round(float(wers.std(ddof=1)) if len(runs) > 1 else 0.0, 3),
            **{f"test_wer_{k}": round(v, 3) for k, v in ci.items()}, "seeds": len(runs),
            "seed_wers": [round(float(w), 3) for w in wers],
            "dev_wer_mean": round(float(np.mean([r["dev_wer"] for r in runs])), 3)}


def paired(first: list[dict], second: list[dict]) -> dict:
    """How much better `first` is than `second` (signkd.studies.intervals.paired_difference): the
    runs are matched by seed, and both must be scored on the same test set."""
    if [r["seed"] for r in first] != [r["seed"] for r in second]:
        raise ValueError(f"a paired comparison needs the same seeds: {[r['seed'] for r in first]} vs {[r['seed'] for r in second]}")
    (a, refs), (b, _) = _stacked(first), _stacked(second)
    if first[0]["test_ids"] != second[0]["test_ids"]:
        raise ValueError("a paired comparison needs both models scored on the same test set")
    return paired_difference(a, b, refs)


def bar_chart(summary: dict[str, dict], path: Path, title: str) -> Path:
    """Mean test WER per model, the bootstrap interval as error bars, each seed as a dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from signkd.io import atomic_path

    names = list(summary)
    means = [summary[n]["test_wer_mean"] for n in names]
    err = np.array([[m - summary[n]["test_wer_ci_low"], summary[n]["test_wer_ci_high"] - m] for n, m in zip(names, means)]).T
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(names)), 3.6))
    ax.bar(range(len(names)), means, yerr=err, capsize=4, color="#6a8caf")
    for i, n in enumerate(names):
        seeds = summary[n].get("seed_wers", [])
        ax.scatter([i] * len(seeds), seeds, color="black", s=8, zorder=3)
    ax.set_xticks(range(len(names)), names, rotation=25, ha="right")
    ax.set_ylabel("test WER % (mean, 95% CI)")
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return path


def markdown_table(summary: dict[str, dict], labels: dict[str, str]) -> str:
    """One row per model: mean ± std over seeds, the two-level interval, the utterance-only one."""
    seeds = max((s["seeds"] for s in summary.values()), default=0)
    lines = [f"| model | test WER % mean ± std ({seeds} seeds) | 95% CI, seeds + utterances | 95% CI, utterances only | dev WER % mean |",
             "|---|---:|---:|---:|---:|"]
    for name, s in summary.items():
        lines.append(f"| {labels.get(name, name)} (`{name}`) | {s['test_wer_mean']:.2f} ± {s['test_wer_std']:.2f} | "
                     f"[{s['test_wer_ci_low']:.2f}, {s['test_wer_ci_high']:.2f}] | "
                     f"[{s['test_wer_utt_ci_low']:.2f}, {s['test_wer_utt_ci_high']:.2f}] | {s['dev_wer_mean']:.2f} |")
    return "\n".join(lines)


def paired_lines(block: dict[str, dict], labels: dict[str, tuple[str, str]]) -> list[str]:
    """The paired comparisons in words, one bullet each (resolved or not)."""
    return [f"- {verdict(*labels[key], p)}" for key, p in block.items()]
