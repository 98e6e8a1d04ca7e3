"""Stage validate: Great Expectations suites over the manifests; broken data stops the chain here."""

from pathlib import Path

import _env  # noqa: F401  (first: a clear message outside the virtual environment)

from signkd.params import Params
from signkd.stage import run_stage
from signkd.tracking import flat_metrics
from signkd.validation import validate_manifests

STAGE = "validate"
HEADLINE = ("num_samples", "vocab_size", "num_failed")


def main(params: Params) -> dict:
    summary = validate_manifests(
        Path(params.data.manifest_dir), min_frames=params.validate_.min_frames, report_dir=Path("reports") / STAGE
    )
    # the headline numbers only (suite names, paths and per-expectation results are in validation.json)
    return {k: v for k, v in flat_metrics(summary).items() if k in HEADLINE or k.startswith("counts_")}


if __name__ == "__main__":
    run_stage(STAGE, main)
