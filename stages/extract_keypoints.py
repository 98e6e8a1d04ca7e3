"""Stage extract_keypoints: MediaPipe Holistic landmarks + visibility mask for every video."""

from pathlib import Path

from signkd.data.manifest import read_all
from signkd.features.keypoints import extract_keypoints
from signkd.params import Params
from signkd.stage import run_stage
from signkd.tracking import flat_metrics

STAGE = "extract_keypoints"


def main(params: Params) -> dict:
    samples = [s for split in read_all(params.data.manifest_dir).values() for s in split]
    cfg = params.keypoints
    stats = extract_keypoints(samples, Path(cfg.out_dir), workers=cfg.workers, on_error=cfg.on_error)
    return flat_metrics(stats)


if __name__ == "__main__":
    run_stage(STAGE, main)
