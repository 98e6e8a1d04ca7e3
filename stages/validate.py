"""Stage validate: Great Expectations suites over the manifests; broken data stops the chain here."""

from pathlib import Path

from signkd.params import Params
from signkd.stage import run_stage
from signkd.tracking import flat_metrics
from signkd.validation import validate_manifests

STAGE = "validate"


def main(params: Params) -> dict:
    summary = validate_manifests(
        Path(params.data.manifest_dir), min_frames=params.validate_.min_frames, report_dir=Path("reports") / STAGE
    )
    return flat_metrics(summary)


if __name__ == "__main__":
    run_stage(STAGE, main)
