"""Stage extract_flow: OpenCV dense optical flow (DIS by default), stored int8 at reduced size."""

from pathlib import Path

import _env  # noqa: F401  (first: a clear message outside the virtual environment)

from signkd.data.manifest import read_all
from signkd.features.flow import extract_flow
from signkd.features.parallel import write_skip_report
from signkd.params import Params
from signkd.stage import run_stage
from signkd.tracking import flat_metrics

STAGE = "extract_flow"
REPORT_DIR = Path("reports") / STAGE


def main(params: Params) -> dict:
    samples = [s for split in read_all(params.data.manifest_dir).values() for s in split]
    cfg = params.flow
    stats = extract_flow(
        samples, Path(cfg.out_dir), method=cfg.method, height=cfg.height, width=cfg.width,
        workers=cfg.workers, on_error=cfg.on_error,
    )
    write_skip_report(REPORT_DIR, stats)  # ids and reasons of videos left out under on_error: skip
    return flat_metrics(stats)


if __name__ == "__main__":
    run_stage(STAGE, main)
