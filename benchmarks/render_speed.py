"""Videos per second of the synthetic renderer with 1 and with N worker processes.

Usage: python benchmarks/render_speed.py [--videos 60] [--workers 2]   (~1 min on 2 cores)

Renders the first videos of the default corpus's settings (params.yaml) into a temporary folder,
once per worker count, and checks that both give byte-identical frames (the renderer's
guarantee; tests/test_synthetic.py tests it on a tiny corpus). Writes
reports/render_speed/metrics.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path

from signkd.data.synthetic import render_corpus
from signkd.io import write_json
from signkd.params import load_params


def _frames_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.png")):
        digest.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=Path("reports/render_speed/metrics.json"))
    args = parser.parse_args(argv)
    params = load_params("params.yaml")
    syn = params.data.synthetic
    figures: dict = {"videos": args.videos}
    with tempfile.TemporaryDirectory(prefix="signkd-render-") as tmp:
        outputs = {}
        for workers in sorted({1, args.workers}):
            out = outputs[workers] = Path(tmp) / f"w{workers}"
            start = time.perf_counter()
            corpus = render_corpus(out, seed=params.seed, num_train=args.videos - 2, num_dev=1, num_test=1,
                                   num_signers=syn.num_signers, min_signs=syn.min_signs, max_signs=syn.max_signs,
                                   height=syn.height, width=syn.width, progress=False, workers=workers)
            seconds = time.perf_counter() - start
            frames = sum(split["frames"] for split in corpus["splits"].values())
            figures[f"videos_per_second_{workers}_workers"] = round(args.videos / seconds, 3)
            figures[f"frames_per_second_{workers}_workers"] = round(frames / seconds, 1)
        figures["byte_identical"] = len({_frames_digest(o) for o in outputs.values()}) == 1
    write_json(args.json, figures)
    print(json.dumps(figures, indent=2, sort_keys=True))
    return figures


if __name__ == "__main__":
    main()
