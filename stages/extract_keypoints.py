"""Stage extract_keypoints: MediaPipe landmarks + visibility mask for every video, by Holistic or,
with `keypoints.backend: tasks`, by the Tasks landmarkers (their model files fetched first).

Besides the per-video arrays it writes two figures into reports/extract_keypoints/: accuracy.png
(detection rates and PCK against the renderer's ground truth, measured when the corpus has one,
i.e. the synthetic corpus) and overlay.gif (the keypoints drawn over the first test video).
"""

import logging
from pathlib import Path

import _env  # noqa: F401  (first: a clear message outside the virtual environment)

from signkd.data.manifest import Sample, read_all
from signkd.data.synthetic import ground_truth_path
from signkd.features.accuracy import keypoint_accuracy, plot_accuracy
from signkd.features.keypoints import extract_keypoints
from signkd.features.overlay import write_overlay_gif
from signkd.features.parallel import output_path, write_skip_report
from signkd.params import Params
from signkd.stage import run_stage
from signkd.tracking import flat_metrics, log_metrics

STAGE = "extract_keypoints"
REPORT_DIR = Path("reports") / STAGE
log = logging.getLogger(STAGE)


def _overlay_sample(samples: list[Sample], out_dir: Path) -> Sample | None:
    """The first test video with extracted keypoints (any split if the test split has none)."""
    extracted = [s for s in samples if output_path(out_dir, s.id).is_file()]
    tests = [s for s in extracted if s.split == "test"]
    return (tests or extracted or [None])[0]


def main(params: Params) -> dict:
    samples = [s for split in read_all(params.data.manifest_dir).values() for s in split]
    cfg = params.keypoints
    out_dir = Path(cfg.out_dir)
    backend = None
    if cfg.backend == "tasks":
        from signkd.features.tasks_backend import start

        backend = start(cfg.tasks.model_dump())  # fetches missing model files, checks pinned sha256s
    stats = extract_keypoints(samples, out_dir, workers=cfg.workers, on_error=cfg.on_error, max_gap=cfg.max_gap,
                              backend=backend)
    write_skip_report(REPORT_DIR, stats)  # ids and reasons of videos left out under on_error: skip
    # per-split rates (36 numbers) go to MLflow only: in metrics.json they would make `dvc exp show` unreadable
    log_metrics({k: v for k, v in flat_metrics(stats.pop("per_split", {}), "per_split_").items()
                 if isinstance(v, (int, float))})
    metrics = flat_metrics(stats)

    # the synthetic renderer's joints; real datasets have none, and then accuracy is empty
    raw_root = Path(params.data.raw_dir) / params.data.dataset
    accuracy = keypoint_accuracy(samples, out_dir, ground_truth_path(raw_root, samples[0].id).parent) if samples else {}
    plot_accuracy(accuracy, REPORT_DIR / "accuracy.png", note=f"(dataset '{params.data.dataset}')")
    metrics |= flat_metrics(accuracy)  # drops the PCK curve's lists
    _log_figure(REPORT_DIR / "accuracy.png")

    sample = _overlay_sample(samples, out_dir)
    if sample is not None:
        truth = ground_truth_path(raw_root, sample.id)
        write_overlay_gif(sample.frames_dir, output_path(out_dir, sample.id), REPORT_DIR / "overlay.gif",
                          ground_truth_npz=truth if truth.is_file() else None)
        _log_figure(REPORT_DIR / "overlay.gif")
    else:
        log.warning("no video has keypoints, so no overlay was drawn")
    return metrics


def _log_figure(path: Path) -> None:
    import mlflow

    if mlflow.active_run() is not None:
        mlflow.log_artifact(str(path), artifact_path=STAGE)


if __name__ == "__main__":
    run_stage(STAGE, main)
