"""dvc.yaml tells the truth: each stage's code deps are exactly the project files its command
runs (the script and every `signkd` module it imports, directly or through other project modules,
including imports inside functions), so editing a file reruns the stages that run it, and only
those. `python scripts/stage_deps.py` writes them; this test checks the files agree."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("stage_deps", ROOT / "scripts" / "stage_deps.py")
stage_deps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(stage_deps)
project_files_imported_by = stage_deps.project_files_imported_by


def _stages(pipeline: Path) -> dict[str, dict]:
    stages = yaml.safe_load(pipeline.read_text())["stages"]
    return {name: s for name, s in stages.items() if stage_deps.stage_script(str(s.get("cmd", ""))) is not None}


STAGES = [(pipeline, name) for pipeline in stage_deps.PIPELINES for name in _stages(pipeline)]


@pytest.mark.parametrize("pipeline, stage", STAGES, ids=[f"{p.parent.name}:{n}" for p, n in STAGES])
def test_code_deps_are_exactly_the_files_the_stage_runs(pipeline, stage):
    spec = _stages(pipeline)[stage]
    declared = {d if isinstance(d, str) else next(iter(d)) for d in spec.get("deps", [])}
    declared = {d for d in declared if stage_deps.is_code(d)}
    wanted = set(stage_deps.code_deps(spec["cmd"]))
    assert declared == wanted, (f"{pipeline.name} stage {stage}: missing {sorted(wanted - declared)}, not run "
                                f"{sorted(declared - wanted)}; run `python scripts/stage_deps.py`")


def test_an_edit_to_the_corpus_report_reruns_prepare_only():
    runs_it = [name for pipeline, name in STAGES
               if "src/signkd/data/corpus_report.py" in stage_deps.code_deps(_stages(pipeline)[name]["cmd"])]
    assert runs_it == ["prepare"]


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
