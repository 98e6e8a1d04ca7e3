"""Dress rehearsal of `make phoenix`: the Phoenix-2014 profile end to end, on a small archive.

Usage:
    python benchmarks/phoenix_rehearsal.py [--workdir DIR] [--json reports/phoenix_rehearsal/metrics.json]
    make phoenix-rehearsal

What is real: the archive is in the Phoenix-2014 release layout (`phoenix2014-release/
phoenix-2014-multisigner/annotations/manual/{split}.corpus.csv` with `id|folder|signer|annotation`,
frames as `features/fullFrame-210x260px/{split}/<id>/1/<id>.avi_pid0_fn000000-0.png`, 210x260),
with Phoenix-style glosses (`__ON__`, `__OFF__`, `loc-`, `cl-` forms) and a training vocabulary of
the real size (1,295 glosses, 1,296 classes with the blank). It is served over HTTP on 127.0.0.1 and
fetched by the pipeline's own download code (size and sha256 checked, unpacked atomically). Then
`dvc repro` runs every stage with `params/phoenix2014.yaml` applied (ResNet-18 video stream, teacher
width 1,024, KD-MSLRT-sized keypoint student, in-sample targets, CorrNet's schedule, Phoenix-2014
kit scoring), in a copy of the repository.

What is cut to fit CI's two cores: 60 utterances (48 training ones of 128 frames; Phoenix-2014
averages ~141), made by the project's renderer (5-sign clips of one signer, joined), whose labels
are not what is signed (this checks plumbing, sizes and cost, not WER); 2 epochs per model; video
frames at 64x64 instead of 224x224 (ResNet-18 is the same network with the same 11.2 M
parameters; `benchmarks/memory_scale.py` measures it at 224); small tune and correct budgets.

It prints each stage's wall time and its cost per utterance, with what that extrapolates to for
Phoenix-2014 (5,672 training videos, 540 dev, 629 test; 40 epochs) on this machine at this frame
size, and writes them to `--json`.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import yaml

from signkd.io import write_json
from signkd.models.spec import migrate

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "params" / "phoenix2014.yaml"
STAGES = (
    "prepare", "validate", "extract_keypoints", "extract_flow", "validate_features", "train_teacher", "train_student",
    "teacher_targets", "tune", "distill", "quantize", "correct", "report",
)
SPLIT_SIZES = {"train": 48, "dev": 6, "test": 6}
# frames per utterance: a training line holds 29 glosses (1,295 over 48 lines), and CTC needs 4
# frames per gloss after the x4 downsampling; dev/test lines hold 10
FRAMES_PER_UTTERANCE = {"train": 128, "dev": 48, "test": 48}
PHOENIX2014 = {"train": 5672, "dev": 540, "test": 629}
PHOENIX_EPOCHS = 40
VOCAB_SIZE = 1295  # Phoenix-2014's training vocabulary (1,296 classes with the CTC blank)
CLIPS, CLIPS_PER_UTTERANCE = 12, 3
BASE = Path("phoenix2014-release") / "phoenix-2014-multisigner"
FRAMES = Path("features") / "fullFrame-210x260px"
REHEARSAL = {
    "keypoints": {"workers": 2}, "flow": {"workers": 2},
    "model": {"frame_height": 64, "frame_width": 64},
    "loader": {"workers": 0},
    # 2 epochs with the profile's step decay after the first (its milestones must lie inside the run)
    "teacher": {"epochs": 2, "milestones": [1]}, "student": {"epochs": 2, "milestones": [1]},
    "kd": {"epochs": 2, "milestones": [1]},
    "tune": {"n_trials": 2, "n_startup_trials": 1, "epochs": 1, "min_epochs": 1},
    "quantize": {"latency_runs": 3},
    "correct": {"pretrain_steps": 20, "finetune_steps": 10, "noise_samples": 100, "samples_per_video": 2},
}
# which utterances a stage's cost scales with, and its epochs here and at Phoenix scale
REHEARSAL_EPOCHS = REHEARSAL["teacher"]["epochs"]  # the same for student and kd
PER_UTTERANCE = {
    "prepare": ("all", 1, 1), "validate": ("all", 1, 1), "extract_keypoints": ("all", 1, 1),
    "extract_flow": ("all", 1, 1), "validate_features": ("all", 1, 1),
    "train_teacher": ("train", REHEARSAL_EPOCHS, PHOENIX_EPOCHS), "train_student": ("train", REHEARSAL_EPOCHS, PHOENIX_EPOCHS),
    "teacher_targets": ("train", 1, 1), "distill": ("train", REHEARSAL_EPOCHS, PHOENIX_EPOCHS), "correct": ("train", 1, 1),
}


def vocabulary() -> list[str]:
    """1,293 Phoenix-style words (every 9th a `loc-` form, every 11th a `cl-` form) + __ON__, __OFF__."""
    words = []
    for i in range(VOCAB_SIZE - 2):
        word = f"WORT{i:04d}"
        words.append(f"loc-{word}" if i % 9 == 4 else f"cl-{word}" if i % 11 == 7 else word)
    return words


def annotations() -> dict[str, list[str]]:
    """Gloss lines per split: the training lines use every word once; dev/test draw from them."""
    words = vocabulary()
    per = -(-len(words) // SPLIT_SIZES["train"])
    lines = {"train": [" ".join(["__ON__", *words[k * per:(k + 1) * per], "__OFF__"]) for k in range(SPLIT_SIZES["train"])]}
    rng = np.random.default_rng(3)
    for split in ("dev", "test"):
        lines[split] = [" ".join(["__ON__", *rng.choice(words, 8, replace=False).tolist(), "__OFF__"])
                        for _ in range(SPLIT_SIZES[split])]
    return lines


def render_clips(out: Path) -> list[list[Path]]:
    """Frame files of 12 rendered 5-sign sentences by one signer (the project's renderer)."""
    from signkd.data.synthetic import frames_path, render_corpus, video_name

    render_corpus(out, seed=11, num_train=CLIPS, num_dev=1, num_test=1, num_signers=1, min_signs=5, max_signs=5,
                  height=260, width=210, progress=False)
    return [sorted(frames_path(out, "train", video_name("train", k)).glob("*.png")) for k in range(CLIPS)]


def video_id(split: str, k: int) -> str:
    day = 1 + (k + {"train": 0, "dev": 7, "test": 14}[split]) % 28
    return f"{day:02d}April_2010_Thursday_heute_default-{k}"


def write_tree(root: Path, clips: list[list[Path]]) -> Path:
    """The Phoenix-2014 release tree under `root`; returns its top folder."""
    base = root / BASE
    manual = base / "annotations" / "manual"
    manual.mkdir(parents=True)
    for split, lines in annotations().items():
        rows = ["id|folder|signer|annotation"]
        for k, glosses in enumerate(lines):
            vid = video_id(split, k)
            folder = base / FRAMES / split / vid / "1"
            folder.mkdir(parents=True)
            frames = [f for c in range(CLIPS_PER_UTTERANCE)
                      for f in clips[(k + c + {"train": 0, "dev": 5, "test": 9}[split]) % CLIPS]]
            frames = frames[:FRAMES_PER_UTTERANCE[split]]
            stem = vid.rsplit("_default", 1)[0]
            for n, frame in enumerate(frames):
                shutil.copyfile(frame, folder / f"{stem}.avi_pid0_fn{n:06d}-0.png")
            rows.append(f"{vid}|{vid}/1/*.png|Signer0{1 + k % 9}|{glosses}")
        (manual / f"{split}.corpus.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root / BASE.parts[0]


def make_archive(work: Path) -> Path:
    clips = render_clips(work / "render")
    release = write_tree(work / "tree", clips)
    archive = work / "served" / "phoenix-2014.v3.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:  # PNGs do not compress: keep it quick
        tar.add(release, arcname=release.name)
    shutil.rmtree(work / "render")
    shutil.rmtree(work / "tree")
    return archive


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the stage output readable
        pass


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def copy_repo(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    for rel in files:
        src = ROOT / rel
        if src.is_file() and not rel.startswith("reports/"):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def write_params(repo: Path, url: str, archive: Path) -> dict:
    from signkd.profiles import apply, read_profile

    params = apply(yaml.safe_load((repo / "params.yaml").read_text()), read_profile(PROFILE))
    download = {"url": url, "sha256": hashlib.sha256(archive.read_bytes()).hexdigest(),
                "expected_size": archive.stat().st_size}
    params = apply(params, {**REHEARSAL, "data": {"download": download}})
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


def run(args: list[str], cwd: Path, env: dict) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc.stdout + proc.stderr


def rehearse(work: Path) -> tuple[Path, dict]:
    """Build, serve and fetch the archive, then `dvc repro` the profile; returns the repo and timings."""
    t0 = time.perf_counter()
    archive = make_archive(work)
    build_s = time.perf_counter() - t0
    repo = work / "repo"
    copy_repo(repo)
    server, url = serve(archive.parent)
    try:
        write_params(repo, f"{url}/{archive.name}", archive)
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        for key in ("MLFLOW_TRACKING_URI", "DVC_ROOT", "OPTUNA_STORAGE"):
            env.pop(key, None)
        git = ["git", "-c", "user.name=rehearsal", "-c", "user.email=r@localhost", "-c", "commit.gpgsign=false"]
        run(["git", "init", "-q"], repo, env)
        run([*git, "add", "-A"], repo, env)
        run([*git, "commit", "-qm", "phoenix rehearsal"], repo, env)
        t1 = time.perf_counter()
        run(["dvc", "repro"], repo, env)
        repro_s = time.perf_counter() - t1
        status = run(["dvc", "status", "dvc.yaml"], repo, env)  # the pipeline; studies/ are not run here
    finally:
        server.shutdown()
        server.server_close()
    return repo, {"archive_build_s": round(build_s, 1), "archive_mb": round(archive.stat().st_size / 2**20, 1),
                  "dvc_repro_s": round(repro_s, 1), "up_to_date_after": "up to date" in status}


def stage_costs(repo: Path) -> dict:
    """Wall time per stage, per utterance, and extrapolated to Phoenix-2014 (hours)."""
    metrics: dict = {}
    counts = {split: SPLIT_SIZES[split] for split in SPLIT_SIZES} | {"all": sum(SPLIT_SIZES.values())}
    phoenix = PHOENIX2014 | {"all": sum(PHOENIX2014.values())}
    for stage in STAGES:
        wall = json.loads((repo / "reports" / stage / "metrics.json").read_text())["wall_time_s"]
        metrics[f"{stage}_wall_s"] = round(wall, 1)
        if stage in PER_UTTERANCE:
            which, epochs_here, epochs_phoenix = PER_UTTERANCE[stage]
            per = wall / (counts[which] * epochs_here)  # per utterance (and epoch), dev scoring included
            metrics[f"{stage}_s_per_utterance"] = round(per, 3)
            metrics[f"{stage}_phoenix2014_h"] = round(per * phoenix[which] * epochs_phoenix / 3600, 2)
    return metrics


def consistency(repo: Path) -> dict:
    """What the outputs must agree on; each figure is also checked by tests/test_phoenix_rehearsal.py."""
    vocab = (repo / "data/manifest/vocab.txt").read_text(encoding="utf-8").split()
    teacher = migrate(json.loads((repo / "models/train_teacher/model.json").read_text())).architecture
    student = json.loads((repo / "reports/train_student/metrics.json").read_text())
    test_ids = [line.split("|")[0] for line in (repo / "data/manifest/test.csv").read_text().splitlines()[1:]]
    hyp_ids = [line.split("|")[0] for line in (repo / "reports/distill/test_hyp.txt").read_text().splitlines()[1:]]
    return {
        "vocab_size": len(vocab),
        "teacher_num_classes": teacher.num_classes,
        "teacher_hidden": teacher.hidden,
        "teacher_video_backbone": teacher.video_backbone,
        "student_num_parameters": student["num_parameters"],
        "test_hypotheses_match_manifest": hyp_ids == test_ids,
        "onnx_files": len(list((repo / "models/quantize").glob("*.onnx"))),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=None, help="keep the workspace here (default: a temporary folder)")
    ap.add_argument("--json", type=Path, default=ROOT / "reports" / "phoenix_rehearsal" / "metrics.json")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        repo, timing = rehearse(work)
        metrics = {**timing, **consistency(repo), **stage_costs(repo)}
    print(f"{'stage':<18} {'wall s':>8} {'s/utterance':>12} {'Phoenix-2014 h':>15}")
    for stage in STAGES:
        print(f"{stage:<18} {metrics[f'{stage}_wall_s']:>8.1f} {metrics.get(f'{stage}_s_per_utterance', float('nan')):>12.3f} "
              f"{metrics.get(f'{stage}_phoenix2014_h', float('nan')):>15.2f}")
    write_json(args.json, metrics)  # atomic
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
