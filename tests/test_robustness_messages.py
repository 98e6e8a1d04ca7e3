"""Bad input ends a stage with one clear message (the file, row or key, and the fix), never a traceback;
a video skipped under `on_error: skip` is listed with its reason, and validation then gives a fix
that can help.

Stages run as DVC runs them: `python stages/<name>.py` in a repository root (here a temporary one
with the real params.yaml re-pointed at a tiny corpus), so the whole path from the script through
`run_stage` is what is tested.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from signkd.data.manifest import Sample, write_manifest, write_vocab
from signkd.features.parallel import read_skip_report
from signkd.params import ParamsError, parse_params
from signkd.validation import DataValidationError, validate_flow

ROOT = Path(__file__).resolve().parents[1]


def _frames(folder: Path, n: int = 9) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    texture = cv2.GaussianBlur((np.random.default_rng(0).random((80, 80)) * 255).astype(np.uint8), (0, 0), 2)
    for t in range(n):
        cv2.imwrite(str(folder / f"{t:03d}.png"), cv2.cvtColor(texture[t:t + 64, t:t + 48], cv2.COLOR_GRAY2BGR))


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A repository root with a 3-video corpus (one per split), its manifests and a params.yaml."""
    repo = tmp_path_factory.mktemp("repo")
    (repo / "dvc.yaml").write_text("stages: {}\n")
    samples = []
    for split in ("train", "dev", "test"):
        _frames(repo / "frames" / split)
        samples.append(Sample(id=split, split=split, frames_dir=f"frames/{split}", signer="s1", num_frames=9,
                              glosses=("NORD", "REGEN")))
        write_manifest(repo / "data/manifest", split, [samples[-1]])
    write_vocab(repo / "data/manifest", ["NORD", "REGEN"])
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["flow"] |= {"workers": 1, "height": 8, "width": 6}
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    from signkd.tracking import prepare_store  # one store for every stage run here

    old = os.environ.get("DVC_ROOT")
    os.environ["DVC_ROOT"] = str(repo)
    try:
        prepare_store()
    finally:
        os.environ.pop("DVC_ROOT") if old is None else os.environ.__setitem__("DVC_ROOT", old)
    return repo


def _stage(repo: Path, name: str, params: dict | None = None) -> subprocess.CompletedProcess:
    if params is not None:
        (repo / "params.yaml").write_text(yaml.safe_dump(params))
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | {"DVC_ROOT": str(repo)}
    return subprocess.run([sys.executable, str(ROOT / "stages" / f"{name}.py")], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=300)


def _one_error(out: subprocess.CompletedProcess, stage: str) -> str:
    """The stage failed with exit code 1 and one `[stage] error: ...` message, without a traceback."""
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith(f"[{stage}] error: ")]
    assert len(errors) == 1, out.stderr
    return errors[0]


@pytest.fixture()
def params(repo):
    text = (repo / "params.yaml").read_text()
    yield yaml.safe_load(text)
    (repo / "params.yaml").write_text(text)


@pytest.fixture()
def manifest(repo):
    path = repo / "data/manifest/train.csv"
    text = path.read_bytes()
    yield path
    path.write_bytes(text)


def test_corrupt_frame_with_on_error_fail_names_the_video_frame_and_fix(repo, params):
    bad = repo / "frames/dev/004.png"
    good = bad.read_bytes()
    bad.write_bytes(b"\x89PNG truncated")
    try:
        line = _one_error(_stage(repo, "extract_flow", params | {"flow": params["flow"] | {"on_error": "fail"}}),
                          "extract_flow")
    finally:
        bad.write_bytes(good)
    assert "video 'dev'" in line and "004.png" in line and "on_error: skip" in line


def test_skipped_video_is_reported_with_reason_and_validation_does_not_suggest_a_rerun(repo, params):
    bad = repo / "frames/dev/004.png"
    good = bad.read_bytes()
    bad.write_bytes(b"\x89PNG truncated")
    try:
        out = _stage(repo, "extract_flow", params | {"flow": params["flow"] | {"on_error": "skip"}})
    finally:
        bad.write_bytes(good)
    assert out.returncode == 0, out.stderr
    report = json.loads((repo / "reports/extract_flow/skipped.json").read_text())
    assert [e["id"] for e in report] == ["dev"] and "004.png" in report[0]["reason"]
    assert json.loads((repo / "reports/extract_flow/metrics.json").read_text())["skipped"] == 1

    with pytest.raises(DataValidationError) as err:
        validate_flow(repo / "data/manifest", repo / "data/flow", max_abs_flow=150.0, report_dir=repo / "val",
                      data_docs=False, skipped=read_skip_report(repo / "reports/extract_flow"))
    message = str(err.value)
    assert "id=dev" in message and "004.png" in message and "re-running it alone skips them again" in message
    assert "dvc repro extract_flow" not in message  # a rerun would skip it again: never suggested


@pytest.mark.parametrize("case, content, needles", [
    ("missing column", b"id|split|frames_dir|signer|num_frames|glosses\ntrain|train|frames/train|s1|9|NORD\n",
     ["train.csv", "lacks column(s) translation", "dvc repro prepare"]),
    ("non-UTF-8 byte", "id|split|frames_dir|signer|num_frames|glosses|translation\n".encode()
     + b"train|train|frames/train|s1|9|NORD|Gr\xfc\xdfe\n", ["train.csv line 2", "0xfc", "UTF-8"]),
    ("non-numeric num_frames", b"id|split|frames_dir|signer|num_frames|glosses|translation\n"
     b"train|train|frames/train|s1|nine|NORD|\n", ["train.csv line 2", "id 'train'", "num_frames 'nine'"]),
])
def test_broken_manifest_is_one_line_naming_file_and_row(repo, manifest, case, content, needles):
    manifest.write_bytes(content)
    line = _one_error(_stage(repo, "validate"), "validate")
    assert all(n in line for n in needles), line


def test_yaml_syntax_error_is_one_line_in_every_stage_and_in_check_params(repo, params):
    text = yaml.safe_dump(params).replace("  alpha: 0.7\n", "  alpha: 0.7\n beta: [1\n")
    (repo / "params.yaml").write_text(text)
    line = _one_error(_stage(repo, "extract_flow"), "extract_flow")
    assert "params.yaml line" in line and "YAML syntax error" in line and "fix that line" in line
    cli = subprocess.run([sys.executable, "-m", "signkd.cli", "check-params", str(repo / "params.yaml")],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 2 and "Traceback" not in cli.stderr
    assert cli.stderr.startswith("error: ") and "YAML syntax error" in cli.stderr
    checked = subprocess.run([sys.executable, str(ROOT / "stages/check_params.py")], cwd=repo, capture_output=True,
                             text=True, timeout=120)
    assert checked.returncode == 1 and "Traceback" not in checked.stderr and "YAML syntax error" in checked.stderr


@pytest.mark.parametrize("key, value", [
    (("kd", "level_weights", "frame"), float("inf")), (("kd", "level_weights", "sequence"), float("nan")),
    (("kd", "alpha"), float("nan")), (("teacher", "lr"), float("inf")), (("validate", "max_abs_flow"), float("inf")),
    (("kd", "temperature"), float("-inf")),
])
def test_non_finite_float_params_are_refused(key, value):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    node = raw
    for part in key[:-1]:
        node = node[part]
    node[key[-1]] = value
    with pytest.raises(ParamsError, match=rf"{'.'.join(key)}: Input should be a finite number"):
        parse_params(raw)


def test_inf_written_in_yaml_is_refused_by_check_params(tmp_path):
    text = (ROOT / "params.yaml").read_text().replace("frame: 0.5 ", "frame: .inf")
    (tmp_path / "params.yaml").write_text(text)
    cli = subprocess.run([sys.executable, "-m", "signkd.cli", "check-params", str(tmp_path / "params.yaml")],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 2 and "kd.level_weights.frame: Input should be a finite number (got inf)" in cli.stderr


def test_a_stage_outside_the_virtual_environment_says_to_activate_it():
    """`python -S` hides site-packages, where the editable install of signkd lives."""
    root = Path(__file__).resolve().parents[1]
    for script in sorted((root / "stages").glob("[!_]*.py")):
        proc = subprocess.run([sys.executable, "-S", str(script)], cwd=root, capture_output=True, text=True)
        assert proc.returncode != 0, script.name
        assert "activate" in proc.stderr and "Traceback" not in proc.stderr, script.name
