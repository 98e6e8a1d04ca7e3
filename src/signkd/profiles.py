"""Run the pipeline with a parameter profile (e.g. `params/phoenix2014.yaml`) as a DVC experiment.

`dvc repro` reads params.yaml only, and editing it by hand for another dataset loses the default
settings. A profile holds just the keys that differ; `python -m signkd.profiles PROFILE` (what
`make phoenix` runs) first checks that params.yaml with the profile applied passes validation,
then runs `dvc exp run -S ++key=value ...` with one override per key of the profile. That is
DVC's documented way to change parameters for an experiment: the run is recorded as an
experiment (`dvc exp show`, MLflow's `dvc_experiment` tag), the user's own params.yaml keys
outside the profile are kept, and `--queue` / `--temp` runs leave the workspace untouched. `++`
(Hydra's add-or-override) also sets keys that params.yaml does not spell out, where the schema
has a default. Extra arguments are passed on to `dvc exp run` (e.g. `-n phoenix2014`, `--queue`).
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import shlex
import sys
from pathlib import Path
from typing import cast

from signkd.params import Params, ParamsError, parse_params, read_yaml


def leaves(tree: dict, prefix: str = "") -> list[tuple[str, object]]:
    """(dotted key, value) for every non-mapping value of a nested mapping."""
    out: list[tuple[str, object]] = []
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.extend(leaves(value, dotted + "."))
        else:
            out.append((dotted, value))
    return out


def hydra_value(value: object) -> str:
    """A YAML value in Hydra's override grammar (what `dvc exp run -S` parses); strings are quoted,
    so that a path or URL with ':', spaces or brackets stays one string."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # Hydra keeps backslashes literally except before a quote (or the closing one): double those
        escaped = re.sub(r"(\\+)(?='|$)", lambda m: m.group(1) * 2, value)
        return "'" + escaped.replace("'", "\\'") + "'"
    if isinstance(value, list):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    if isinstance(value, dict) and not value:
        return "{}"
    raise TypeError(f"cannot express {value!r} as a --set-param value")


def overrides(profile: dict) -> list[str]:
    """`dvc exp run -S` arguments that set every key of the profile."""
    return [f"++{key}={hydra_value(value)}" for key, value in leaves(profile)]


def apply(base: dict, profile: dict) -> dict:
    """params.yaml with the profile's keys set (a deep merge; lists are replaced, not merged)."""
    out = copy.deepcopy(base)
    for key, value in leaves(profile):
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = copy.deepcopy(value)
    return out


def read_profile(path: Path) -> dict:
    raw = read_yaml(path)
    if not isinstance(raw, dict) or not raw:
        raise ParamsError(f"{path}: a profile is a non-empty mapping of params.yaml keys")
    return raw


def check(profile_path: Path, params_path: Path = Path("params.yaml")) -> Params:
    """Validate params.yaml with the profile applied; the error names the profile's bad key."""
    merged = apply(cast(dict, read_yaml(params_path)), read_profile(profile_path))  # not a mapping: fails in apply
    return parse_params(merged, Path(f"{params_path} + {profile_path}"))


def command(profile_path: Path, extra: list[str]) -> list[str]:
    args = [a for o in overrides(read_profile(profile_path)) for a in ("-S", o)]
    return [sys.executable, "-m", "dvc", "exp", "run", *args, *extra]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m signkd.profiles", description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path, help="a YAML file of params.yaml keys to change, e.g. params/phoenix2014.yaml")
    parser.add_argument("--dry-run", action="store_true", help="print the dvc command instead of running it")
    args, extra = parser.parse_known_args(argv)
    try:
        params = check(args.profile)
    except ParamsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    cmd = command(args.profile, extra)
    print(f"{args.profile}: valid ({params.data.dataset}); running: {shlex.join(cmd[1:])}", file=sys.stderr)
    if args.dry_run:
        print(shlex.join(cmd))
        return 0
    os.execv(cmd[0], cmd)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
