"""Great Expectations suites over the manifests and the extracted features: broken data stops the chain.

Each suite runs on one pandas DataFrame with a row per video. Facts GX cannot see from a CSV
alone (does the frame folder exist, does the keypoint file load, are its values finite, how often
were hands detected) are computed first as columns and then checked like any other column, so a
failure names the expectation, the column and the offending videos with their files.

- `manifests`: all splits in one frame, so "ids are unique" also means "splits are disjoint".
- `keypoints`: one `<keypoint_dir>/<id>.npz` per manifest video (see `signkd.features.keypoints`).
- `flow`: one `<flow_dir>/<id>.npz` per manifest video (see `signkd.features.flow`).

Every suite writes `<report_dir>/<name>.json` (`validation.json` for the manifests, the name the
pipeline's later stages depend on; `keypoints.json`, `flow.json` for the features) and GX Data
Docs (HTML) to `<report_dir>/data_docs/<suite>/index.html`, and raises `DataValidationError` on
any failed expectation.
"""

from __future__ import annotations

import logging
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from signkd.data.common import count_frames
from signkd.data.manifest import SPLITS, Sample, read_all, read_manifest, read_vocab
from signkd.errors import InputError
from signkd.io import atomic_dir, load_npz, write_json

MAX_EXAMPLES = 5
SUITE_NAME = "manifests"
KEYPOINT_SUITE = "keypoints"
FLOW_SUITE = "flow"
REPREPARE = "then re-run `dvc repro prepare validate`"
# x, y of a detected joint are image-normalised; a tracked joint may lie slightly outside [0, 1]
XY_RANGE = (-0.5, 1.5)


class DataValidationError(InputError, RuntimeError):
    """The data breaks at least one expectation; the message lists each with offending videos and the fix."""


@dataclass(frozen=True)
class Check:
    """One expectation, how to fix a failure of it, and what to show about each offending video."""

    expectation: Any
    fix: str
    show: tuple[str, ...] = ()  # extra columns printed for each offending row
    # for a corpus-level expectation (no offending rows of its own): list the rows with the lowest
    # values of its column as examples
    lowest_first: bool = False


@dataclass(frozen=True)
class _Suite:
    name: str
    subject: str  # what was validated, for the error message
    checks: list[Check]
    report_name: str
    example_columns: tuple[str, ...]
    extra: dict = field(default_factory=dict)  # summary fields besides the expectation results


# ---------------------------------------------------------------------------------------------
# manifests


def manifest_frame(manifest_dir: str | os.PathLike, *, base_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """All splits in one DataFrame plus the computed check columns (one directory listing per video)."""
    vocab = set(read_vocab(manifest_dir))
    rows = []
    for split in SPLITS:
        for s in read_manifest(manifest_dir, split):
            on_disk = count_frames(Path(base_dir or ".") / s.frames_dir) if s.frames_dir else 0
            rows.append({
                "id": s.id or None,
                "split": s.split,
                "frames_dir": s.frames_dir or None,
                "signer": s.signer,
                "num_frames": s.num_frames,
                "glosses": " ".join(s.glosses) or None,
                "frames_on_disk": on_disk,
                "frames_dir_exists": on_disk > 0,
                # a missing folder is reported once, by frames_dir_exists
                "num_frames_matches_disk": on_disk == 0 or on_disk == s.num_frames,
                # dev/test may hold out-of-vocabulary glosses (official protocol); train may not
                "glosses_in_vocab": s.split != "train" or all(g in vocab for g in s.glosses),
            })
    frame = pd.DataFrame(rows, columns=[
        "id", "split", "frames_dir", "signer", "num_frames", "glosses", "frames_on_disk",
        "frames_dir_exists", "num_frames_matches_disk", "glosses_in_vocab",
    ]).astype({"id": object, "split": object, "frames_dir": object, "glosses": object})
    frame.insert(0, "row", range(len(frame)))
    return frame


def _manifest_checks(min_frames: int) -> list[Check]:
    import great_expectations.expectations as gxe

    return [
        Check(gxe.ExpectColumnValuesToNotBeNull(column="id"), f"every video needs an id; fix the annotation file, {REPREPARE}"),
        Check(gxe.ExpectColumnValuesToBeUnique(column="id"),
              f"an id may appear once and in one split only (splits must be disjoint); remove the duplicates from the raw annotations, {REPREPARE}"),
        Check(gxe.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS)),
              f"split must be one of {', '.join(SPLITS)}; regenerate the manifests with `dvc repro prepare`"),
        Check(gxe.ExpectColumnDistinctValuesToContainSet(column="split", value_set=list(SPLITS)),
              f"every split needs at least one video; check the raw annotation files, {REPREPARE}"),
        Check(gxe.ExpectColumnValuesToNotBeNull(column="frames_dir"), f"every video needs a frame folder; fix the raw annotations, {REPREPARE}"),
        Check(gxe.ExpectColumnValuesToBeInSet(column="frames_dir_exists", value_set=[True]),
              f"the frame folder is missing or holds no images; restore the dataset (re-download/re-render it), {REPREPARE}"),
        Check(gxe.ExpectColumnValuesToBeInSet(column="num_frames_matches_disk", value_set=[True]),
              "num_frames differs from the images on disk: the manifest is stale; re-run `dvc repro prepare validate`",
              show=("frames_on_disk",)),
        Check(gxe.ExpectColumnValuesToBeBetween(column="num_frames", min_value=min_frames),
              f"videos need at least validate.min_frames={min_frames} frames; drop them from the raw data or lower validate.min_frames"),
        Check(gxe.ExpectColumnValuesToNotBeNull(column="glosses"),
              f"every video needs at least one gloss; fix or remove it in the raw annotations, {REPREPARE}"),
        Check(gxe.ExpectColumnValuesToBeInSet(column="glosses_in_vocab", value_set=[True]),
              "a train gloss is missing from vocab.txt: the vocabulary is stale; re-run `dvc repro prepare validate`"),
    ]


def validate_manifests(
    manifest_dir: str | os.PathLike,
    *,
    min_frames: int,
    report_dir: str | os.PathLike,
    base_dir: str | os.PathLike | None = None,
    data_docs: bool = True,
) -> dict:
    """Validate all split manifests; write `validation.json` (+ Data Docs) and raise on any failure.

    Relative frame folders are resolved against `base_dir` (default: the working directory,
    i.e. the repository root when run by DVC).
    """
    frame = manifest_frame(manifest_dir, base_dir=base_dir)
    suite = _Suite(
        name=SUITE_NAME, subject=str(manifest_dir), checks=_manifest_checks(min_frames), report_name="validation",
        example_columns=("id", "split", "num_frames", "frames_dir"),
        extra={
            "num_samples": len(frame),
            "counts": _counts(frame),
            "vocab_size": len(read_vocab(manifest_dir)),
            "min_frames": min_frames,
        },
    )
    return _validate(frame, suite, Path(report_dir), data_docs=data_docs)


# ---------------------------------------------------------------------------------------------
# extracted features

_FEATURE_COLUMNS = ("row", "id", "split", "num_frames", "path", "not_skipped", "skip_reason", "file_present",
                    "file_readable", "detail", "frames_in_file", "frames_match_manifest", "values_finite",
                    "nonfinite_values")
_EXAMPLE_COLUMNS = ("id", "split", "num_frames", "path")
_NUMERIC_COLUMNS = ("num_frames", "hand_detection_rate", "pose_detection_rate", "max_abs_flow_px")


def keypoint_frame(manifest_dir: str | os.PathLike, keypoint_dir: str | os.PathLike,
                   skipped: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per manifest video with the computed keypoint check columns (each file loaded once).

    Columns a file's state makes meaningless (e.g. frame count of a missing file) are null, so
    that each broken file is reported by the one expectation that says what is wrong with it.
    `skipped` (id -> reason, from the extraction stage's skipped.json) marks videos the extractor
    left out on purpose: they are reported as such, not as files to extract again.
    """
    from signkd.features.keypoints import LEFT_HAND, NUM_JOINTS, POSE, RIGHT_HAND

    def check(arrays: dict[str, np.ndarray], row: dict) -> None:
        landmarks, mask, size = arrays["landmarks"], arrays["mask"], arrays["frame_size"]
        if landmarks.ndim != 3 or landmarks.shape[1:] != (NUM_JOINTS, 3) or landmarks.dtype.kind != "f":
            raise ValueError(f"landmarks are {landmarks.dtype} {list(landmarks.shape)}, expected float [T, {NUM_JOINTS}, 3]")
        if mask.dtype != np.bool_ or mask.shape != landmarks.shape[:2]:
            raise ValueError(f"mask is {mask.dtype} {list(mask.shape)}, expected bool {list(landmarks.shape[:2])}")
        if size.shape != (2,) or size.dtype.kind not in "iu" or (size <= 0).any():
            raise ValueError(f"frame_size is {size.dtype} {size.tolist()}, expected two positive integers")
        finite = np.isfinite(landmarks)
        xy = landmarks[..., :2][mask]
        xy = xy[np.isfinite(xy)]  # non-finite values are reported once, by values_finite
        frames = len(landmarks)
        row.update(
            frames_in_file=frames,
            values_finite=bool(finite.all()),
            nonfinite_values=int((~finite).sum()),
            xy_in_range=bool(((xy >= XY_RANGE[0]) & (xy <= XY_RANGE[1])).all()),
            xy_min=round(float(xy.min()), 4) if xy.size else None,
            xy_max=round(float(xy.max()), 4) if xy.size else None,
            hand_detection_rate=_rate(mask[:, LEFT_HAND].any(1) | mask[:, RIGHT_HAND].any(1)),
            pose_detection_rate=_rate(mask[:, POSE].any(1)),
        )

    return _feature_frame(manifest_dir, keypoint_dir, ("landmarks", "mask", "frame_size"), check,
                          ("xy_in_range", "xy_min", "xy_max", "hand_detection_rate", "pose_detection_rate"), skipped)


def flow_frame(manifest_dir: str | os.PathLike, flow_dir: str | os.PathLike,
               skipped: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per manifest video with the computed flow check columns (each file loaded once)."""

    def check(arrays: dict[str, np.ndarray], row: dict) -> None:
        scale: np.ndarray | float  # the stored array, then its value
        flow, scale, method = arrays["flow"], arrays["scale"], arrays["method"]
        if flow.dtype != np.int8 or flow.ndim != 4 or flow.shape[1] != 2:
            raise ValueError(f"flow is {flow.dtype} {list(flow.shape)}, expected int8 [T, 2, height, width]")
        if scale.shape != () or scale.dtype.kind != "f":
            raise ValueError(f"scale is {scale.dtype} {list(scale.shape)}, expected one float")
        if method.shape != () or method.dtype.kind != "U":
            raise ValueError(f"method is {method.dtype} {list(method.shape)}, expected one string")
        scale = float(scale)
        finite = bool(np.isfinite(scale))
        peak = int(np.abs(flow.astype(np.int16)).max()) if flow.size else 0
        row.update(
            frames_in_file=len(flow),
            values_finite=finite,
            nonfinite_values=0 if finite else int(flow.size),
            max_abs_flow_px=round(peak * scale, 4) if finite else None,
            flow_size=f"{flow.shape[2]}x{flow.shape[3]}",
            method=str(method),
        )

    return _feature_frame(manifest_dir, flow_dir, ("flow", "scale", "method"), check,
                          ("max_abs_flow_px", "flow_size", "method"), skipped)


def _feature_frame(manifest_dir, feature_dir, keys: tuple[str, ...], check, extra_columns: tuple[str, ...],
                   skipped: dict[str, str] | None = None) -> pd.DataFrame:
    from signkd.features.parallel import output_path

    columns = [c for c in _FEATURE_COLUMNS if c != "row"] + list(extra_columns)
    rows = []
    for samples in read_all(manifest_dir).values():
        for s in samples:
            path = output_path(feature_dir, s.id)
            if skipped and s.id in skipped and not path.is_file():  # left out on purpose: reported once, as such
                row = {"id": s.id, "split": s.split, "num_frames": s.num_frames, "path": str(path),
                       "not_skipped": False, "skip_reason": skipped[s.id][:300] or "no reason recorded", "detail": ""}
            else:
                row = _feature_row(s, path, keys, check) | {"not_skipped": True}
            rows.append(dict.fromkeys(columns) | row)
    # object columns keep None as None (not NaN), bools as bools and ints as ints, for GX and the
    # report; only the columns numeric expectations run on are numbers (null = NaN)
    frame = pd.DataFrame(rows, columns=columns, dtype=object)
    for column in _NUMERIC_COLUMNS:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column])
    frame.insert(0, "row", range(len(frame)))
    return frame


def _feature_row(sample: Sample, path: Path, keys: tuple[str, ...], check) -> dict:
    row: dict[str, Any] = {"id": sample.id, "split": sample.split, "num_frames": sample.num_frames,
                           "path": str(path), "file_present": path.is_file(), "detail": ""}
    if not row["file_present"]:
        return row  # reported once, by file_present
    try:
        if not zipfile.is_zipfile(path):  # np.load would take it for a pickle and say so
            raise ValueError("not an .npz archive (truncated or overwritten)")
        arrays = load_npz(path)
        absent = [k for k in keys if k not in arrays]
        if absent:
            raise ValueError(f"no array(s) {', '.join(absent)} (holds {', '.join(sorted(arrays)) or 'nothing'})")
        check(arrays, row)
    except Exception as err:  # noqa: BLE001 - any failure to read is reported as the file being unreadable
        row.update({k: None for k in list(row) if k not in ("id", "split", "num_frames", "path", "file_present")})
        row.update(file_readable=False, detail=f"{type(err).__name__}: {err}"[:300])
        return row
    row["file_readable"] = True
    row["frames_match_manifest"] = row["frames_in_file"] == sample.num_frames
    return row


def _feature_checks(stage: str, skipped: dict[str, str] | None = None) -> list[Check]:
    import great_expectations.expectations as gxe

    rerun = f"`dvc repro {stage}` (it resumes: files that are already there are kept)"
    skips = [Check(gxe.ExpectColumnValuesToBeInSet(column="not_skipped", value_set=[True]),
                   f"{stage} left these videos out (on_error: skip) because their frames cannot be read (reason "
                   "listed); re-running it alone skips them again: repair or re-render their frames, or remove the "
                   "videos from the dataset (then `dvc repro` reruns prepare and everything after it)",
                   show=("skip_reason",))] if skipped else []
    return skips + [
        Check(gxe.ExpectColumnValuesToBeInSet(column="file_present", value_set=[True]),
              f"the feature file is missing; extract it with {rerun}"),
        Check(gxe.ExpectColumnValuesToBeInSet(column="file_readable", value_set=[True]),
              f"the file is damaged or was not written by this pipeline; delete the listed files, then run {rerun}",
              show=("detail",)),
        Check(gxe.ExpectColumnValuesToBeInSet(column="frames_match_manifest", value_set=[True]),
              f"the features are stale (the video's frames changed after extraction); delete the listed files, then run {rerun}",
              show=("frames_in_file",)),
        Check(gxe.ExpectColumnValuesToBeInSet(column="values_finite", value_set=[True]),
              f"the file holds NaN/inf values; delete the listed files, then run {rerun}, and report it if it recurs",
              show=("nonfinite_values",)),
    ]


def validate_keypoints(
    manifest_dir: str | os.PathLike,
    keypoint_dir: str | os.PathLike,
    *,
    min_detection_rate: float,
    report_dir: str | os.PathLike,
    data_docs: bool = True,
    skipped: dict[str, str] | None = None,
) -> dict:
    """Validate the keypoint file of every manifest video; write `keypoints.json` (+ Data Docs), raise on failure.

    Per video: the file is present and loads, holds one frame per manifest frame, only finite
    values, and x, y within [-0.5, 1.5] wherever a joint is detected. Over the corpus: the mean
    per-video hand detection rate (frames with either hand found) is at least `min_detection_rate`.
    """
    if not 0.0 <= min_detection_rate <= 1.0:
        raise ValueError(f"min_detection_rate must lie in [0, 1], got {min_detection_rate!r}")
    import great_expectations.expectations as gxe

    frame = keypoint_frame(manifest_dir, keypoint_dir, skipped)
    lo, hi = XY_RANGE
    checks = _feature_checks("extract_keypoints", skipped) + [
        Check(gxe.ExpectColumnValuesToBeInSet(column="xy_in_range", value_set=[True]),
              f"detected joints lie far outside the image (x or y outside [{lo}, {hi}]): the file is corrupt or "
              "was made by another extractor; delete the listed files, then run `dvc repro extract_keypoints`",
              show=("xy_min", "xy_max")),
        Check(gxe.ExpectColumnMeanToBeBetween(column="hand_detection_rate", min_value=min_detection_rate, max_value=1.0),
              f"hands are found in too few frames (mean over videos below min_detection_rate={min_detection_rate}): "
              "check the listed videos' frames (resolution, cropping, squashed aspect ratio, occlusion), "
              "or lower the threshold if the data really is like that",
              show=("hand_detection_rate",), lowest_first=True),
    ]
    suite = _Suite(
        name=KEYPOINT_SUITE, subject=f"keypoints in {keypoint_dir}", checks=checks, report_name=KEYPOINT_SUITE,
        example_columns=_EXAMPLE_COLUMNS,
        extra={
            "num_videos": len(frame),
            "counts": _counts(frame),
            "keypoint_dir": str(keypoint_dir),
            "min_detection_rate": min_detection_rate,
            "mean_hand_detection_rate": _mean(frame["hand_detection_rate"]),
            "mean_pose_detection_rate": _mean(frame["pose_detection_rate"]),
        },
    )
    return _validate(frame, suite, Path(report_dir), data_docs=data_docs)


def validate_flow(
    manifest_dir: str | os.PathLike,
    flow_dir: str | os.PathLike,
    *,
    max_abs_flow: float,
    report_dir: str | os.PathLike,
    height: int | None = None,
    width: int | None = None,
    data_docs: bool = True,
    skipped: dict[str, str] | None = None,
) -> dict:
    """Validate the flow file of every manifest video; write `flow.json` (+ Data Docs), raise on failure.

    Per video: the file is present and loads, holds one field per manifest frame, a finite scale,
    no displacement above `max_abs_flow` pixels (of the original frame), and the same field size
    as the others: `height`x`width` when given (the flow params), else the corpus' most common size.
    """
    if not max_abs_flow > 0:
        raise ValueError(f"max_abs_flow must be > 0 pixels, got {max_abs_flow!r}")
    import great_expectations.expectations as gxe

    frame = flow_frame(manifest_dir, flow_dir, skipped)
    sizes = frame["flow_size"].dropna()
    expected_size: str | None
    if height is not None and width is not None:
        expected_size = f"{height}x{width}"
    else:
        expected_size = str(sizes.mode().sort_values().iloc[0]) if len(sizes) else None
    checks = _feature_checks("extract_flow", skipped) + [
        Check(gxe.ExpectColumnValuesToBeBetween(column="max_abs_flow_px", min_value=0.0, max_value=max_abs_flow),
              f"flow larger than max_abs_flow={max_abs_flow} px: the file is corrupt or the video has cuts/jumps; "
              "delete the listed files and re-run `dvc repro extract_flow`, or drop those videos",
              show=("max_abs_flow_px",)),
    ]
    if expected_size is not None:  # None: no file could be read, which the checks above report
        checks.append(Check(
            gxe.ExpectColumnValuesToBeInSet(column="flow_size", value_set=[expected_size]),
            f"flow fields must all be {expected_size} (height x width) so they can be batched: these were made "
            "with other flow.height/flow.width settings; delete them and re-run `dvc repro extract_flow`",
            show=("flow_size",)))
    observed = frame["max_abs_flow_px"].dropna()
    suite = _Suite(
        name=FLOW_SUITE, subject=f"optical flow in {flow_dir}", checks=checks, report_name=FLOW_SUITE,
        example_columns=_EXAMPLE_COLUMNS,
        extra={
            "num_videos": len(frame),
            "counts": _counts(frame),
            "flow_dir": str(flow_dir),
            "max_abs_flow": max_abs_flow,
            "observed_max_abs_flow": float(observed.max()) if len(observed) else None,
            "flow_size": expected_size,
            "methods": sorted(frame["method"].dropna().unique().tolist()),
        },
    )
    return _validate(frame, suite, Path(report_dir), data_docs=data_docs)


def _rate(detected: np.ndarray) -> float | None:
    """Fraction of frames with a detection (None for a video without frames)."""
    return round(float(detected.mean()), 4) if detected.size else None


def _counts(frame: pd.DataFrame) -> dict[str, int]:
    return {split: int((frame["split"] == split).sum()) for split in SPLITS}


def _mean(column: pd.Series) -> float | None:
    values = pd.to_numeric(column, errors="coerce").dropna()
    return round(float(values.mean()), 4) if len(values) else None


# ---------------------------------------------------------------------------------------------
# GX plumbing shared by every suite


def _quiet_gx() -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    for name in ("great_expectations", "posthog"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _run_suite(frame: pd.DataFrame, name: str, checks: list[Check], docs_dir: Path | None):
    """Run the expectations on `frame` through a GX Checkpoint; Data Docs are built into `docs_dir` when given."""
    _quiet_gx()
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites = {}
    if docs_dir is not None:
        sites["local_site"] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir.resolve())},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        data_docs_sites=sites,
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    batch = (
        context.data_sources.add_pandas("signkd")
        .add_dataframe_asset(name)
        .add_batch_definition_whole_dataframe("all_videos")
    )
    suite = context.suites.add(gx.ExpectationSuite(name=name))
    for check in checks:
        suite.add_expectation(check.expectation)
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
    checkpoint = context.checkpoints.add(gx.Checkpoint(
        name=name,
        validation_definitions=[definition],
        actions=[UpdateDataDocsAction(name="data_docs")] if docs_dir is not None else [],
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["row"]},
    ))
    result = checkpoint.run(batch_parameters={"dataframe": frame})
    (suite_result,) = result.run_results.values()
    return suite_result


def _validate(frame: pd.DataFrame, suite: _Suite, report_dir: Path, *, data_docs: bool) -> dict:
    """Run `suite` on `frame`, write `<report_name>.json` (+ Data Docs), raise `DataValidationError` on failure."""
    docs_index = None
    if data_docs:
        docs_dir = report_dir / "data_docs" / suite.name
        with atomic_dir(docs_dir) as docs_tmp:
            suite_result = _run_suite(frame, suite.name, suite.checks, docs_tmp)
        docs_index = docs_dir / "index.html"
    else:
        suite_result = _run_suite(frame, suite.name, suite.checks, None)

    by_key = {_key(c.expectation.expectation_type, c.expectation.column): c for c in suite.checks}
    results = []
    for r in suite_result.results:
        cfg = r.expectation_config
        column = cfg.kwargs.get("column", "")
        check = by_key.get(_key(cfg.type, column))
        result = r.result or {}
        exception = _exception_message(r.exception_info)
        results.append({
            "expectation": cfg.type,
            "column": column,
            "success": bool(r.success),
            "unexpected_count": int(result.get("unexpected_count") or 0),
            "observed_value": _jsonable(result.get("observed_value")),
            "missing": _jsonable(result.get("partial_missing_list") or []),
            "examples": _examples(frame, result, column, suite.example_columns, check),
            "fix": check.fix if check else "",
            **({"error": str(exception)} if exception else {}),
        })
    summary = {
        "suite": suite.name,
        "success": bool(suite_result.success),
        **suite.extra,
        "num_expectations": len(results),
        "num_failed": sum(not c["success"] for c in results),
        "expectations": results,
        "data_docs": str(docs_index) if docs_index else None,
    }
    report = report_dir / f"{suite.report_name}.json"
    write_json(report, summary)
    if not summary["success"]:
        raise DataValidationError(_failure_message(suite, report, summary))
    return summary


def _exception_message(info) -> str | None:
    """GX's exception_info is one {raised_exception, exception_message, ...} dict or a dict of them."""
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        return str(info.get("exception_message")) if info["raised_exception"] else None
    messages = [m for m in map(_exception_message, info.values()) if m]
    return "; ".join(messages) or None


def _key(kind: str, column: str) -> str:
    return f"{kind}:{column}"


def _examples(frame: pd.DataFrame, result: dict, column: str, columns: tuple[str, ...], check: Check | None) -> list[dict]:
    """Up to MAX_EXAMPLES offending rows: the example columns, the checked column and the check's `show` columns."""
    rows = [entry["row"] for entry in result.get("unexpected_index_list") or [] if "row" in entry]
    if not rows and check is not None and check.lowest_first and column in frame:
        values = pd.to_numeric(frame[column], errors="coerce").dropna().sort_values(kind="stable")
        rows = frame.loc[values.index, "row"].tolist()
    shown = list(dict.fromkeys([*columns, *(c for c in (column, *(check.show if check else ())) if c in frame)]))
    out = []
    for record in frame.iloc[rows[:MAX_EXAMPLES]][shown].to_dict("records"):
        example = {k: _jsonable(v) for k, v in record.items()}
        # a flag column's value is always the failing one; leave it out of the listing
        if column not in columns and isinstance(example.get(column), bool):
            example.pop(column)
        out.append({k: v for k, v in example.items() if v not in ("", None) or k in columns})
    return out


def _jsonable(value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    return str(value)


def _failure_message(suite: _Suite, report: Path, summary: dict) -> str:
    failed = [c for c in summary["expectations"] if not c["success"]]
    lines = [f"data validation of {suite.subject} failed: {len(failed)} of {summary['num_expectations']} "
             f"expectations of the '{suite.name}' suite"]
    for c in failed:
        head = f"- {c['expectation']} on column '{c['column']}'"
        if c["unexpected_count"]:
            head += f": {c['unexpected_count']} row(s)"
        elif c["missing"]:
            head += f": missing {', '.join(map(str, c['missing']))}"
        elif c["observed_value"] is not None:
            observed = c["observed_value"]
            head += f": observed {observed:.4g}" if isinstance(observed, float) else f": observed {observed}"
            if c["examples"]:
                head += f" (lowest {len(c['examples'])} listed)"
        elif c.get("error"):
            head += f": could not be evaluated ({c['error']})"
        else:
            head += ": nothing to evaluate (the column has no values; see the failures above)"
        lines.append(head)
        for ex in c["examples"]:
            lines.append("    " + " ".join(f"{k}={v}" for k, v in ex.items()))
        if c["unexpected_count"] > len(c["examples"]):
            lines.append(f"    ... and {c['unexpected_count'] - len(c['examples'])} more")
        lines.append(f"  fix: {c['fix']}")
    lines.append(f"details: {report}" + (f", {summary['data_docs']}" if summary["data_docs"] else ""))
    return "\n".join(lines)
