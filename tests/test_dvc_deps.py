"""dvc.yaml tells the truth: every project file a stage's script imports (directly or through
other project modules, including imports inside functions) is covered by one of its `deps`, so
editing that code reruns the stage and no stale output passes as fresh."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def _module_file(name: str) -> Path | None:
    """The file of a `signkd...` module (package -> its __init__.py); None outside the project."""
    if not name.startswith("signkd"):
        return None
    base = SRC / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> set[str]:
    """Project modules imported anywhere in a file (`from signkd.x import y` may name a module y)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return {n for n in names if _module_file(n) is not None}


def project_files_imported_by(script: Path) -> set[Path]:
    """The transitive closure of project files a script imports, parent packages included."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
                f = _module_file(".".join(parts[:i]))
                if f is not None and f not in seen:
                    todo.append(f)
    return seen


def _stages() -> dict[str, dict]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: s for name, s in stages.items() if str(s.get("cmd", "")).startswith("python stages/")}


def _covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(ROOT)
    return any(rel == Path(d) or Path(d) in rel.parents for d in deps)


@pytest.mark.parametrize("stage", sorted(_stages()))
def test_every_imported_project_file_is_a_dependency(stage):
    spec = _stages()[stage]
    script = ROOT / spec["cmd"].split()[1]
    deps = [d if isinstance(d, str) else next(iter(d)) for d in spec.get("deps", [])]
    missing = sorted(str(p.relative_to(ROOT)) for p in project_files_imported_by(script) if not _covered(p, deps))
    assert not missing, f"dvc.yaml stage {stage} imports these files but does not depend on them: {missing}"


def test_the_import_scan_follows_lazy_and_transitive_imports():
    files = {p.relative_to(ROOT).as_posix() for p in project_files_imported_by(ROOT / "stages/quantize.py")}
    assert "src/signkd/inference.py" in files  # direct
    assert "src/signkd/decode.py" in files  # through signkd.inference
    assert "src/signkd/models/blocks.py" in files  # through checkpoint -> recognizer


def test_the_default_pipeline_never_depends_on_a_study():
    """`dvc repro` follows dependencies into studies/dvc.yaml: one default stage reading a study's
    output would make a first run train the studies (hours) before it finishes."""
    def outputs(stage: dict) -> list[str]:
        entries = stage.get("outs", []) + stage.get("metrics", []) + stage.get("plots", [])
        return [next(iter(e)) if isinstance(e, dict) else e for e in entries]

    studies = yaml.safe_load((ROOT / "studies" / "dvc.yaml").read_text())["stages"]
    produced = [Path(p) for stage in studies.values() for p in outputs(stage)]
    default = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in default.items():
        for dep in stage.get("deps", []):
            dep = Path(dep)
            clash = [p for p in produced if p == dep or p in dep.parents or dep in p.parents]
            assert not clash, f"dvc.yaml stage {name} depends on {dep}, made by a study ({clash[0]})"
