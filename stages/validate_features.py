"""Stage validate_features: Great Expectations suites over the extracted keypoints and flow.

Runs after extraction and before any training, so NaNs, truncated files, frame-count
mismatches, a failed MediaPipe run or exploding flow stop the chain with the file named.
"""

from pathlib import Path

import _env  # noqa: F401  (first: a clear message outside the virtual environment)

from signkd.features.parallel import read_skip_report
from signkd.params import Params
from signkd.stage import run_stage
from signkd.tracking import flat_metrics
from signkd.validation import validate_flow, validate_keypoints

STAGE = "validate_features"
REPORT_DIR = Path("reports") / STAGE
HEADLINE = ("keypoints_num_videos", "keypoints_mean_hand_detection_rate", "keypoints_mean_pose_detection_rate",
            "keypoints_num_failed", "flow_observed_max_abs_flow", "flow_num_failed")


def main(params: Params) -> dict:
    manifests = Path(params.data.manifest_dir)
    checks = params.validate_
    keypoints = validate_keypoints(
        manifests, Path(params.keypoints.out_dir), min_detection_rate=checks.min_detection_rate, report_dir=REPORT_DIR,
        skipped=read_skip_report(Path("reports") / "extract_keypoints"),
    )
    flow = validate_flow(
        manifests, Path(params.flow.out_dir), max_abs_flow=checks.max_abs_flow, report_dir=REPORT_DIR,
        height=params.flow.height, width=params.flow.width, skipped=read_skip_report(Path("reports") / "extract_flow"),
    )
    # the headline numbers only (the rest is in keypoints.json and flow.json), so `dvc exp show` stays readable
    metrics = flat_metrics({"keypoints": keypoints, "flow": flow})
    return {k: metrics[k] for k in HEADLINE if k in metrics}


if __name__ == "__main__":
    run_stage(STAGE, main)
