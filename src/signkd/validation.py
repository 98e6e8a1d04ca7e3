"""Great Expectations checks over the split manifests: broken data stops the chain before training.

Every split is loaded into one DataFrame, so "ids are unique" also means "splits are disjoint".
Facts GX cannot see from the CSV alone (does the frame folder exist, does its image count match,
is every train gloss in the vocabulary) are computed first as columns and checked like any other.
The result goes to `validation.json` and to GX Data Docs (HTML) in the report folder.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from signkd.data.manifest import SPLITS, read_manifest, read_vocab
from signkd.data.phoenix import count_frames
from signkd.io import atomic_dir, write_json

MAX_EXAMPLES = 5
SUITE_NAME = "manifests"
REPREPARE = "then re-run `dvc repro prepare validate`"


class DataValidationError(RuntimeError):
    """The manifests break at least one expectation; the message lists each with offending ids."""


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


def _expectations(min_frames: int) -> list[tuple[object, str]]:
    """The suite, each expectation paired with how to fix a failure of it."""
    import great_expectations.expectations as gxe

    return [
        (gxe.ExpectColumnValuesToNotBeNull(column="id"), f"every video needs an id; fix the annotation file, {REPREPARE}"),
        (gxe.ExpectColumnValuesToBeUnique(column="id"),
         f"an id may appear once and in one split only (splits must be disjoint); remove the duplicates from the raw annotations, {REPREPARE}"),
        (gxe.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS)),
         f"split must be one of {', '.join(SPLITS)}; regenerate the manifests with `dvc repro prepare`"),
        (gxe.ExpectColumnDistinctValuesToContainSet(column="split", value_set=list(SPLITS)),
         f"every split needs at least one video; check the raw annotation files, {REPREPARE}"),
        (gxe.ExpectColumnValuesToNotBeNull(column="frames_dir"), f"every video needs a frame folder; fix the raw annotations, {REPREPARE}"),
        (gxe.ExpectColumnValuesToBeInSet(column="frames_dir_exists", value_set=[True]),
         f"the frame folder is missing or holds no images; restore the dataset (re-download/re-render it), {REPREPARE}"),
        (gxe.ExpectColumnValuesToBeInSet(column="num_frames_matches_disk", value_set=[True]),
         "num_frames differs from the images on disk: the manifest is stale; re-run `dvc repro prepare validate`"),
        (gxe.ExpectColumnValuesToBeBetween(column="num_frames", min_value=min_frames),
         f"videos need at least validate.min_frames={min_frames} frames; drop them from the raw data or lower validate.min_frames"),
        (gxe.ExpectColumnValuesToNotBeNull(column="glosses"),
         f"every video needs at least one gloss; fix or remove it in the raw annotations, {REPREPARE}"),
        (gxe.ExpectColumnValuesToBeInSet(column="glosses_in_vocab", value_set=[True]),
         "a train gloss is missing from vocab.txt: the vocabulary is stale; re-run `dvc repro prepare validate`"),
    ]


def _quiet_gx() -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    for name in ("great_expectations", "posthog"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _run_suite(frame: pd.DataFrame, min_frames: int, docs_dir: Path | None):
    """Run the suite through a GX Checkpoint; Data Docs are built into `docs_dir` when given."""
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
        .add_dataframe_asset("manifests")
        .add_batch_definition_whole_dataframe("all_splits")
    )
    checks = _expectations(min_frames)
    suite = context.suites.add(gx.ExpectationSuite(name=SUITE_NAME))
    for expectation, _ in checks:
        suite.add_expectation(expectation)
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=SUITE_NAME, data=batch, suite=suite))
    checkpoint = context.checkpoints.add(gx.Checkpoint(
        name=SUITE_NAME,
        validation_definitions=[definition],
        actions=[UpdateDataDocsAction(name="data_docs")] if docs_dir is not None else [],
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["row"]},
    ))
    result = checkpoint.run(batch_parameters={"dataframe": frame})
    (suite_result,) = result.run_results.values()
    fixes = {_key(e.expectation_type, e.column): fix for e, fix in checks}
    return suite_result, fixes


def _key(kind: str, column: str) -> str:
    return f"{kind}:{column}"


def _examples(frame: pd.DataFrame, result: dict) -> list[dict]:
    rows = [entry["row"] for entry in result.get("unexpected_index_list") or [] if "row" in entry]
    return [
        {"id": r["id"], "split": r["split"], "frames_dir": r["frames_dir"], "num_frames": int(r["num_frames"])}
        for r in frame.iloc[rows[:MAX_EXAMPLES]].to_dict("records")
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
    manifest_dir, report_dir = Path(manifest_dir), Path(report_dir)
    frame = manifest_frame(manifest_dir, base_dir=base_dir)
    docs_index = None
    if data_docs:
        with atomic_dir(report_dir / "data_docs") as docs_tmp:
            suite_result, fixes = _run_suite(frame, min_frames, docs_tmp)
        docs_index = report_dir / "data_docs" / "index.html"
    else:
        suite_result, fixes = _run_suite(frame, min_frames, None)

    checks = []
    for r in suite_result.results:
        cfg = r.expectation_config
        column = cfg.kwargs.get("column", "")
        checks.append({
            "expectation": cfg.type,
            "column": column,
            "success": bool(r.success),
            "unexpected_count": int(r.result.get("unexpected_count") or 0),
            "observed_value": _jsonable(r.result.get("observed_value")),
            "missing": _jsonable(r.result.get("partial_missing_list") or []),
            "examples": _examples(frame, r.result),
            "fix": fixes.get(_key(cfg.type, column), ""),
        })
    summary = {
        "success": bool(suite_result.success),
        "num_samples": len(frame),
        "counts": {split: int((frame["split"] == split).sum()) for split in SPLITS},
        "vocab_size": len(read_vocab(manifest_dir)),
        "min_frames": min_frames,
        "num_expectations": len(checks),
        "num_failed": sum(not c["success"] for c in checks),
        "expectations": checks,
        "data_docs": str(docs_index) if docs_index else None,
    }
    write_json(report_dir / "validation.json", summary)
    if not summary["success"]:
        raise DataValidationError(_failure_message(manifest_dir, report_dir, summary))
    return summary


def _jsonable(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    return str(value)


def _failure_message(manifest_dir: Path, report_dir: Path, summary: dict) -> str:
    failed = [c for c in summary["expectations"] if not c["success"]]
    lines = [f"data validation of {manifest_dir} failed: {len(failed)} of {summary['num_expectations']} expectations"]
    for c in failed:
        head = f"- {c['expectation']} on column '{c['column']}'"
        if c["unexpected_count"]:
            head += f": {c['unexpected_count']} row(s)"
        elif c["missing"]:
            head += f": missing {', '.join(map(str, c['missing']))}"
        elif c["observed_value"] is not None:
            head += f": observed {c['observed_value']}"
        lines.append(head)
        for ex in c["examples"]:
            lines.append(f"    id={ex['id']} split={ex['split']} num_frames={ex['num_frames']} frames_dir={ex['frames_dir']}")
        if c["unexpected_count"] > len(c["examples"]):
            lines.append(f"    ... and {c['unexpected_count'] - len(c['examples'])} more")
        lines.append(f"  fix: {c['fix']}")
    lines.append(f"details: {report_dir / 'validation.json'}" + (f", {summary['data_docs']}" if summary["data_docs"] else ""))
    return "\n".join(lines)
