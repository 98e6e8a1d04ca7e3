"""When should `recognize` say "outside what this model knows"? Calibrated on dev, checked on test
and on inputs the model has never seen.

Usage (after `dvc repro`):
    python benchmarks/abstention_probe.py [--ood 40] [--json reports/abstention/metrics.json]

The score is the hypothesis' mean gloss confidence (each gloss's mean posterior over the frames
a CTC forced alignment gives it; no gloss: 0), computed by `recognize`'s own model step
(`read_glosses`) on the stored landmarks of the default corpus. The threshold is the 2nd
percentile of dev's scores (so ~2% of in-domain dev videos would be refused); the false-alarm
rate on the 300 test videos is measured at it. Out-of-domain inputs, through MediaPipe like
`recognize`: (a) signers signing sentences of signs that are not in the lexicon (new
combinations of handshape, orientation, location and movement, rendered by the corpus's own
renderer), (b) test videos played backwards (reversed movements: mostly other forms), (c) still
clips (a test video's middle frame held; the motion rule catches these first). Reported: the
catch rate of the confidence rule, and of confidence + `recognize`'s "nobody signing" rules.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from signkd.data.manifest import read_manifest
from signkd.data.render import make_signer, render_video
from signkd.data.signs import HANDSHAPES, LEXICON, LOCATIONS, MOVEMENTS, ORIENTATIONS, Sign
from signkd.features.keypoints import keypoints_for_video
from signkd.features.workers import quiet_native_logs
from signkd.io import load_npz, write_json
from signkd.recognize import DEFAULT_MODEL, is_signing, load_deployable, mean_confidence, read_glosses

PERCENTILE = 2.0


def score(arrays: dict, backend, config) -> float:
    return mean_confidence(read_glosses(arrays, backend, config)[1])


def novel_lexicon(rng: np.random.Generator, count: int) -> dict[str, Sign]:
    """Signs whose form no lexicon sign has (one-handed, away from the other hand)."""
    taken = {(s.handshape, s.orientation, s.location, s.movement) for s in LEXICON.values()}
    places = [loc for loc in LOCATIONS if loc != "other_hand"]  # "other_hand" needs a two-handed base sign
    forms = [f for f in itertools.product(sorted(HANDSHAPES), ORIENTATIONS, places, MOVEMENTS) if f not in taken]
    chosen = rng.choice(len(forms), size=count, replace=False)
    return {f"NEU{i}": Sign(f"NEU{i}", *forms[j]) for i, j in enumerate(chosen)}


def write_frames(frames: list[np.ndarray], dest: Path) -> Path:
    dest.mkdir(parents=True)
    for t, frame in enumerate(frames):
        cv2.imwrite(str(dest / f"{t:04d}.png"), frame)
    return dest


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--ood", type=int, default=40, help="videos of each out-of-domain kind")
    ap.add_argument("--json", type=Path, default=Path("reports/abstention/metrics.json"))
    args = ap.parse_args(argv)
    backend, config = load_deployable(args.model)
    stored = {split: [load_npz(Path("data/keypoints") / f"{s.id}.npz") for s in read_manifest("data/manifest", split)]
              for split in ("dev", "test")}
    scores = {split: np.array([score(a, backend, config) for a in arrays]) for split, arrays in stored.items()}
    threshold = float(np.percentile(scores["dev"], PERCENTILE))
    rng = np.random.default_rng(7)
    lexicon = novel_lexicon(rng, 30)
    kinds: dict[str, list[tuple[float, bool]]] = {"unknown_signs": [], "reversed": [], "still": []}
    tests = read_manifest("data/manifest", "test")[: args.ood]
    with tempfile.TemporaryDirectory() as tmp, quiet_native_logs():
        root = Path(tmp)
        for i in range(args.ood):
            glosses = list(rng.choice(sorted(lexicon), size=int(rng.integers(2, 6))))
            video = render_video(glosses, make_signer(i % 4, np.random.default_rng(i)), np.random.default_rng(100 + i), lexicon=lexicon)
            clips = {"unknown_signs": write_frames(video.frames, root / f"new{i}")}
            frames = [cv2.imread(str(p)) for p in sorted(Path(tests[i].frames_dir).iterdir())]
            clips["reversed"] = write_frames(frames[::-1], root / f"rev{i}")
            clips["still"] = write_frames([frames[len(frames) // 2]] * len(frames), root / f"still{i}")
            for kind, clip in clips.items():
                arrays = keypoints_for_video(clip, max_gap=config.preprocessing.max_gap)
                kinds[kind].append((score(arrays, backend, config), is_signing(arrays)))
            print(f"{i + 1}/{args.ood}", end="\r", file=sys.stderr)
    metrics = {"threshold": round(threshold, 4), "percentile": PERCENTILE,
               "dev_false_alarm_rate": round(float((scores["dev"] < threshold).mean()), 4),
               "test_false_alarm_rate": round(float((scores["test"] < threshold).mean()), 4),
               "test_videos": len(scores["test"]), "dev_score_median": round(float(np.median(scores["dev"])), 4),
               "test_score_median": round(float(np.median(scores["test"])), 4)}
    for kind, rows in kinds.items():
        s = np.array([r[0] for r in rows])
        signing = np.array([r[1] for r in rows])
        metrics[f"{kind}_catch_rate"] = round(float((s < threshold).mean()), 4)
        metrics[f"{kind}_catch_rate_with_signing_rules"] = round(float(((s < threshold) | ~signing).mean()), 4)
        metrics[f"{kind}_score_median"] = round(float(np.median(s)), 4)
        metrics[f"{kind}_videos"] = len(rows)
    write_json(args.json, metrics)
    print(metrics)
    return metrics


if __name__ == "__main__":
    main()
