"""Stage prepare: get a dataset into the common on-disk form (Phoenix layout + manifests).

`synthetic` renders the embedded signer corpus from the seed; `phoenix2014` / `phoenix2014t`
download the official archive (resumable, checksum-verified) and unpack it; `csl_daily` reads
the user's licensed copy in place; `custom` reads the user's own videos + CSV in place and seeds
the keypoint cache with any precomputed keypoints (signkd.data.custom). data/raw is a persistent
DVC output, so a rerun never deletes a download or a user's copy. Either way the dataset's
reader then writes one manifest per split and the training vocabulary, and
reports/data/ describes what was prepared (statistics; for the synthetic corpus also a contact
sheet of the lexicon and an animated test sentence).
"""

import time
from pathlib import Path

import _env  # noqa: F401  (first: a clear message outside the virtual environment)

from signkd.data.corpus_report import report_metrics, write_corpus_report
from signkd.data.custom import import_keypoints
from signkd.data.download import fetch_dataset
from signkd.data.manifest import read_all
from signkd.data.registry import prepare_from_raw
from signkd.data.synthetic import render_corpus
from signkd.params import Params
from signkd.stage import StageError, run_stage
from signkd.tracking import flat_metrics

STAGE = "prepare"
REPORT_DIR = Path("reports") / "data"


def main(params: Params) -> dict:
    data = params.data
    raw_root = Path(data.raw_dir) / data.dataset
    metrics: dict = {"dataset": data.dataset}
    if data.dataset == "synthetic":
        syn = data.synthetic
        start = time.perf_counter()
        render_corpus(
            raw_root, seed=params.seed, num_train=syn.num_train, num_dev=syn.num_dev, num_test=syn.num_test,
            num_signers=syn.num_signers, min_signs=syn.min_signs, max_signs=syn.max_signs,
            height=syn.height, width=syn.width, split_mode=syn.split_mode, test_signer=syn.test_signer,
        )
        metrics["render_time_s"] = round(time.perf_counter() - start, 2)
    elif data.dataset == "csl_daily":
        if not raw_root.is_dir():
            raise StageError(
                f"CSL-Daily is not downloadable: request it (licence agreement), then place or link your copy "
                f"at {raw_root} (with sentence_label/ and sentence/frames_512x512/ inside) and rerun"
            )
    elif data.dataset == "custom":
        if not raw_root.is_dir():
            raise StageError(
                f"data.dataset is custom but {raw_root} does not exist: put your videos there with "
                f"{data.custom.annotations} (or train.csv, dev.csv, test.csv) and rerun; see README, 'Your own data'"
            )
    else:
        dl = data.download
        raw_root = fetch_dataset(dl.url, Path(data.raw_dir), data.dataset, expected_size=dl.expected_size, sha256=dl.sha256)
    options = {"annotations": data.custom.annotations} if data.dataset == "custom" else {}
    stats = prepare_from_raw(data.dataset, raw_root, Path(data.manifest_dir), **options)
    metrics.update(flat_metrics(stats))
    metrics["videos"] = sum(stats["counts"].values())
    metrics["frames"] = sum(f["total"] for f in stats["frames"].values())
    if data.dataset == "custom":
        samples = [s for split in read_all(data.manifest_dir).values() for s in split]
        keypoints = raw_root / data.custom.keypoints_dir if data.custom.keypoints_dir else None
        metrics.update(import_keypoints(samples, keypoints, Path(params.keypoints.out_dir)))
    report = write_corpus_report(raw_root, Path(data.manifest_dir), REPORT_DIR, dataset=data.dataset)
    metrics.update(report_metrics(report))
    return metrics


if __name__ == "__main__":
    run_stage(STAGE, main)
