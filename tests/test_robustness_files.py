"""Files the pipeline writes are readable by the team, byte-stable, and tracked the right way.

- Atomic writes go through `tempfile`, which makes files 0600 and folders 0700; outputs must get
  the modes a plain open()/mkdir() gives (0666/0777 less the umask).
- Equal arrays must give an equal `.npz` (no wall-clock timestamps inside), or DVC sees new data.
- An output DVC neither caches nor git tracks is missing in every queued/temp experiment, so its
  stage reruns there for nothing (the validation stages' Data Docs did); `dvc plots show` output
  and the MLflow store's lock are git-ignored.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from signkd.io import atomic_dir, load_npz, save_npz, write_json, write_text

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_written_files_and_folders_get_the_umask_modes(tmp_path, umask):
    write_json(tmp_path / "a.json", {"x": 1})
    write_text(tmp_path / "b.txt", "x")
    save_npz(tmp_path / "c.npz", x=np.zeros(3))
    with atomic_dir(tmp_path / "d") as tmp:
        (tmp / "inner.txt").write_text("x")
    for name in ("a.json", "b.txt", "c.npz"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o777 & ~umask


def test_equal_arrays_give_equal_npz_bytes_at_any_time(tmp_path, monkeypatch):
    arrays = {"landmarks": np.arange(12, dtype=np.float32).reshape(2, 2, 3), "mask": np.ones((2, 2), bool),
              "method": np.asarray("dis"), "max_gap": np.asarray(4, np.int32)}
    save_npz(tmp_path / "a.npz", **arrays)
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 86_400 * 3)  # three days later
    save_npz(tmp_path / "b.npz", **arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    back = load_npz(tmp_path / "b.npz")
    assert back.keys() == arrays.keys() and all(np.array_equal(back[k], arrays[k]) for k in arrays)
    with pytest.raises(ValueError, match="allow_pickle"):
        save_npz(tmp_path / "c.npz", obj=np.array([{}], dtype=object))


def _outputs(cache: bool) -> list[str]:
    paths = []
    for stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].values():
        for kind in ("outs", "metrics", "plots"):
            for out in stage.get(kind, []):
                path, cfg = next(iter(out.items())) if isinstance(out, dict) else (out, {})
                if (cfg or {}).get("cache", True) == cache:
                    paths.append(path)
    return paths


def _ignored(paths: list[str]) -> set[str]:
    """The paths git ignores; a path inside each is asked too, since `dir/` patterns only match folders."""
    probes = {probe: path for path in paths for probe in (path, f"{path}/probe")}
    out = subprocess.run(["git", "check-ignore", "--no-index", *probes], cwd=ROOT, capture_output=True, text=True)
    return {probes[line] for line in out.stdout.split()}


def test_every_output_is_either_cached_or_committed():
    uncached = _outputs(cache=False)
    assert "reports/check_params/passed.txt" in uncached
    lost = _ignored(uncached)
    assert not lost, f"git-ignored and not cached by DVC, so queued experiments rerun their stages: {sorted(lost)}"
    assert {"reports/validate/data_docs", "reports/validate_features/data_docs"} <= set(_outputs(cache=True))


def test_plot_renders_and_the_store_lock_are_git_ignored():
    assert _ignored(["dvc_plots/index.html", "mlflow.db.lock", "mlflow.db"]) == {
        "dvc_plots/index.html", "mlflow.db.lock", "mlflow.db"}
