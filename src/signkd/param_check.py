"""The `check_params` stage: params.yaml is validated before DVC touches any output, and a failed
`dvc exp run -S` gives the workspace its params.yaml back.

Why a stage of its own: DVC deletes a stage's outputs before it runs the stage's command, so a check
inside each stage comes too late (`dvc exp run -S kd.alpha=1.5` used to delete `models/tune` and
the git-tracked `reports/tune/metrics.json`). `check_params` depends on the whole params.yaml and
every other stage depends on its output (through `prepare`), so whenever a parameter changed DVC
runs it first and stops the chain there if it fails, before any other stage is touched. Its output
never changes, so a passing check reruns nothing else.

Why the restore: `dvc exp run -S key=value` writes the value into the workspace's params.yaml
(re-formatting the whole file) before running, and leaves it there when the run fails. The
overridden keys are read from the `dvc exp run` command line (the check runs as its child) and put
back to their values in the experiment's baseline commit; when that makes params.yaml equal to the
baseline's, the baseline's exact bytes are written back. Only workspace runs are restored: `--temp`
and `--queue` runs work in a copy and never change the workspace.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import yaml

from signkd.io import write_text
from signkd.params import ParamsError, load_params

STAGE = "check_params"
PASSED = Path("reports") / STAGE / "passed.txt"
PASSED_TEXT = ("params.yaml passed validation (src/signkd/params.py). Every stage depends on this file, so DVC "
               "runs that check before it touches any stage's outputs.\n")


def main(params_path: str = "params.yaml") -> int:
    """Validate; on success write PASSED (constant bytes), on failure one message and, under a workspace
    `dvc exp run -S`, the overridden keys put back."""
    try:
        load_params(params_path)
    except ParamsError as err:
        print(f"\n[{STAGE}] error: {err}", file=sys.stderr)
        note = restore_after_failed_experiment(Path(params_path))
        if note:
            print(f"[{STAGE}] {note}", file=sys.stderr)
        return 1
    write_text(PASSED, PASSED_TEXT)
    print(f"[{STAGE}] {params_path}: ok")
    return 0


def _workspace_experiment() -> str | None:
    """The baseline commit of the `dvc exp run` this runs in, when it runs in the user's workspace."""
    baseline, root = os.environ.get("DVC_EXP_BASELINE_REV"), os.environ.get("DVC_ROOT")
    if not baseline or not root or Path.cwd().resolve() != Path(root).resolve():
        return None
    return baseline


def experiment_overrides() -> list[str] | None:
    """The `-S/--set-param` values of the `dvc exp run` process this runs under (for params.yaml), or
    None when there is no such process."""
    import psutil

    try:
        for proc in psutil.Process().parents():
            argv = proc.cmdline()
            for i in range(len(argv) - 1):
                if argv[i] in ("exp", "experiments") and argv[i + 1] == "run":
                    return _set_params(argv[i:])
    except psutil.Error:
        return None
    return None


def _set_params(argv: list[str]) -> list[str] | None:
    """params.yaml overrides of an `exp run ...` command line, parsed by DVC's own parser."""
    from dvc.cli import parse_args
    from dvc.utils.cli_parse import to_path_overrides

    logging.disable(logging.CRITICAL)  # DVC's parser logs and prints usage before it exits
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            args = parse_args(argv)
    except (SystemExit, Exception):  # noqa: BLE001 - an unparsable command line: no restore
        return None
    finally:
        logging.disable(logging.NOTSET)
    overrides = to_path_overrides(getattr(args, "set_param", None) or [])
    return [o for path, items in overrides.items() if Path(path).name == "params.yaml" for o in items]


def _override_keys(overrides: list[str]) -> list[str]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return [o.key_or_group for o in OverridesParser.create().parse_overrides(overrides)]


def restore_after_failed_experiment(path: Path) -> str:
    """Put back the keys a failed workspace `dvc exp run -S` changed; returns what was done (or '')."""
    baseline_rev = _workspace_experiment()
    if baseline_rev is None:
        return ""
    overrides = experiment_overrides()
    if not overrides:
        return (f"{path} still holds this experiment's values: put back the keys named above "
                "(`git diff params.yaml` shows them)")
    try:
        keys = _override_keys(overrides)
        baseline_text = subprocess.run(["git", "show", f"{baseline_rev}:{path.as_posix()}"], capture_output=True,
                                       text=True, check=True).stdout
    except Exception as err:  # noqa: BLE001 - no restore possible; say so
        return f"{path} still holds this experiment's values ({type(err).__name__}: {err}); put back the keys above"
    baseline = yaml.safe_load(baseline_text) or {}
    _revert_keys(path, keys, baseline)
    if yaml.safe_load(path.read_text(encoding="utf-8")) == baseline:
        write_text(path, baseline_text)  # the file exactly as committed, not DVC's re-formatting
    shown = ", ".join(f"{k}={_lookup(baseline, k)!r}" if _has(baseline, k) else f"{k} (removed)" for k in keys)
    return (f"{path} restored: {shown} as before `dvc exp run {' '.join('-S ' + o for o in overrides)}`; "
            "no stage ran and no output was touched")


def _has(tree: object, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True


def _lookup(tree: dict, dotted: str) -> object:
    for part in dotted.split("."):
        tree = tree[part]
    return tree


def _revert_keys(path: Path, keys: list[str], baseline: dict) -> None:
    """Set each dotted key to its baseline value (or delete it), keeping the file's comments."""
    from dvc.utils.serialize import modify_yaml

    with modify_yaml(str(path)) as data:
        for key in keys:
            *parents, leaf = key.split(".")
            node = data
            for part in parents:
                node = node.setdefault(part, {})
            if _has(baseline, key):
                node[leaf] = _lookup(baseline, key)
            else:
                node.pop(leaf, None)
