"""Write each DVC stage's code `deps` as exactly the project files its command runs.

A stage's code dependencies are the transitive closure of the `signkd` modules its script imports
(at module level or inside functions; importing a.b.c also runs a/__init__ and a/b/__init__), plus
the script itself. Listing exactly those files, rather than whole folders, means an edit reruns
only the stages that run the edited file (a chart in data/corpus_report.py reruns `prepare` only).

    python scripts/stage_deps.py           # rewrite the code deps of dvc.yaml and studies/dvc.yaml
    python scripts/stage_deps.py --check   # exit 1 and name each stage whose deps differ

Deps outside src/ and stages/ (data, reports, a benchmark a stage runs as a script) are kept as
written. Comments and layout are kept (ruamel.yaml round trip). tests/test_dvc_deps.py checks
that the files agree with this scan.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PIPELINES = (ROOT / "dvc.yaml", ROOT / "studies" / "dvc.yaml")
CODE_DIRS = ("src/", "stages/")


def module_file(name: str) -> Path | None:
    """The file of a `signkd...` module (package -> its __init__.py); None outside the project."""
    if not name.startswith("signkd"):
        return None
    base = SRC / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Project modules imported anywhere in a file (`from signkd.x import y` may name a module y)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return {n for n in names if module_file(n) is not None}


def project_files_imported_by(script: Path) -> set[Path]:
    """The script and the transitive closure of project files it imports, parent packages included."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_modules(path):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                f = module_file(".".join(parts[:i]))
                if f is not None and f not in seen:
                    todo.append(f)
    return seen


def stage_script(cmd: str) -> Path | None:
    """The Python file a stage command runs: `python stages/x.py ...` or `python -m signkd.a.b ...`."""
    words = cmd.split()
    if len(words) >= 2 and words[0] == "python" and words[1].endswith(".py"):
        return ROOT / words[1]
    if len(words) >= 3 and words[:2] == ["python", "-m"]:
        return module_file(words[2])
    return None


def code_deps(cmd: str) -> list[str]:
    script = stage_script(cmd)
    if script is None:
        return []
    return sorted(p.relative_to(ROOT).as_posix() for p in project_files_imported_by(script))


def _dep_name(dep) -> str:
    return dep if isinstance(dep, str) else next(iter(dep))


def is_code(dep: str) -> bool:
    return dep.startswith(CODE_DIRS)


def differences(pipeline: Path) -> dict[str, tuple[list[str], list[str]]]:
    """stage -> (missing, extra) code deps, for the stages whose deps are not exactly their scan."""
    import yaml

    out = {}
    for name, stage in (yaml.safe_load(pipeline.read_text(encoding="utf-8")).get("stages") or {}).items():
        if stage_script(str(stage.get("cmd", ""))) is None:
            continue
        declared = {_dep_name(d) for d in stage.get("deps", []) if is_code(_dep_name(d))}
        wanted = set(code_deps(str(stage["cmd"])))
        if declared != wanted:
            out[name] = (sorted(wanted - declared), sorted(declared - wanted))
    return out


def rewrite(pipeline: Path) -> list[str]:
    """Put each stage's scanned code deps first, then its other deps as they were; returns the
    names of the stages it changed."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedSeq

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    doc = yaml.load(pipeline.read_text(encoding="utf-8"))
    changed = differences(pipeline)
    for name in changed:
        stage = doc["stages"][name]
        old = stage.get("deps") or CommentedSeq()
        others = [d for d in old if not is_code(_dep_name(d))]
        new = CommentedSeq(code_deps(str(stage["cmd"])) + others)
        for i, dep in enumerate(new):  # keep the comment a kept dep had (its reason)
            if i >= len(code_deps(str(stage["cmd"]))):
                j = next(k for k, d in enumerate(old) if d is dep)
                if j in old.ca.items:
                    new.ca.items[i] = old.ca.items[j]
        stage["deps"] = new
    if changed:
        tmp = pipeline.with_suffix(".yaml.tmp")
        with tmp.open("w", encoding="utf-8") as f:
            yaml.dump(doc, f)
        tmp.replace(pipeline)
    return list(changed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="report differences, change nothing")
    args = parser.parse_args(argv)
    status = 0
    for pipeline in PIPELINES:
        if args.check:
            for name, (missing, extra) in differences(pipeline).items():
                print(f"{pipeline.relative_to(ROOT)}: stage {name}: missing {missing}, not imported {extra}", file=sys.stderr)
                status = 1
        else:
            for name in rewrite(pipeline):
                print(f"{pipeline.relative_to(ROOT)}: {name}: code deps rewritten")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
