"""Stage prepare: get a dataset into the common on-disk form (Phoenix layout + manifests).

`synthetic` renders the embedded signer corpus from the seed; `phoenix2014` / `phoenix2014t`
download the official archive (resumable, checksum-verified) and unpack it. Either way the
Phoenix readers then write one manifest per split and the training vocabulary.
"""

import time
from pathlib import Path

from signkd.data.download import fetch_dataset
from signkd.data.phoenix import prepare_from_raw
from signkd.data.synthetic import render_corpus
from signkd.params import Params
from signkd.stage import run_stage
from signkd.tracking import flat_metrics

STAGE = "prepare"


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
            height=syn.height, width=syn.width,
        )
        metrics["render_time_s"] = round(time.perf_counter() - start, 2)
    else:
        dl = data.download
        raw_root = fetch_dataset(dl.url, Path(data.raw_dir), data.dataset, expected_size=dl.expected_size, sha256=dl.sha256)
    stats = prepare_from_raw(data.dataset, raw_root, Path(data.manifest_dir))
    metrics.update(flat_metrics(stats))
    return metrics


if __name__ == "__main__":
    run_stage(STAGE, main)
