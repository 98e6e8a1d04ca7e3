"""`signkd` command line: recognise a video on the CPU, check params, show the results table.

  signkd recognize my_video.mp4          # video -> MediaPipe -> int8 student -> decoder -> correction
  signkd check-params [params.yaml]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _recognize(args: argparse.Namespace) -> int:
    from signkd.correction import GlossCorrector
    from signkd.decode import decode
    from signkd.features.keypoints import keypoints_for_video
    from signkd.quantize import OnnxRecognizer
    from signkd.training.data import ALL_PARTS, keypoint_features

    models = Path(args.models)
    onnx_path = models / "quantize" / "student_int8.onnx"
    vocab_cfg = models / "distill" / "model.json"
    for path in (onnx_path, vocab_cfg):
        if not path.is_file():
            print(f"error: {path} not found; run `make repro` (or `dvc repro quantize`) first", file=sys.stderr)
            return 1
    student_cfg = json.loads(vocab_cfg.read_text())
    glosses = student_cfg["vocab"]
    parts = tuple(student_cfg.get("keypoint_parts", ALL_PARTS))
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    start = time.perf_counter()
    arrays = keypoints_for_video(args.video)
    t_keypoints = time.perf_counter() - start
    log_probs = OnnxRecognizer(onnx_path, threads=args.threads).log_probs(keypoint_features(arrays, parts))
    hyp = [glosses[c - 1] for c in decode(log_probs, args.decoder, args.beam_width)]
    corrected = hyp
    if not args.no_correction and (models / "correct").is_dir():
        corrected = GlossCorrector.load(models / "correct").correct([hyp])[0]
    total = time.perf_counter() - start
    frames = len(arrays["mask"])
    duration = frames / args.fps
    result = {
        "video": str(args.video),
        "frames": frames,
        "glosses": " ".join(hyp),
        "corrected": " ".join(corrected),
        "seconds": round(total, 3),
        "keypoint_seconds": round(t_keypoints, 3),
        "real_time_factor": round(total / duration, 3) if duration else None,
    }
    print(json.dumps(result, indent=2, ensure_ascii=False) if args.json else f"{result['corrected']}\n"
          f"(raw: {result['glosses']}; {frames} frames in {total:.2f} s, real-time factor {result['real_time_factor']})")
    return 0


def _check_params(args: argparse.Namespace) -> int:
    from signkd.params import ParamsError, load_params

    try:
        load_params(args.params)
    except ParamsError as err:
        print(err, file=sys.stderr)
        return 2
    print(f"{args.params}: ok")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="signkd", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("recognize", help="glosses (and corrected glosses) for a video file or a folder of frames")
    rec.add_argument("video", type=Path, help=".mp4/.avi/.mov file or a folder of frame images")
    rec.add_argument("--models", default="models", help="the pipeline's models/ folder (default: models)")
    rec.add_argument("--decoder", choices=("greedy", "beam"), default="beam")
    rec.add_argument("--beam-width", type=int, default=5)
    rec.add_argument("--fps", type=float, default=25.0, help="frame rate, for the real-time factor (Phoenix: 25)")
    rec.add_argument("--threads", type=int, default=1)
    rec.add_argument("--no-correction", action="store_true")
    rec.add_argument("--json", action="store_true")
    rec.set_defaults(func=_recognize)
    chk = sub.add_parser("check-params", help="validate params.yaml")
    chk.add_argument("params", nargs="?", default="params.yaml")
    chk.set_defaults(func=_check_params)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except Exception as err:  # noqa: BLE001 - a CLI prints input errors, not tracebacks
        from signkd.features.frames import FrameSourceError

        if isinstance(err, (FrameSourceError, FileNotFoundError)):
            print(f"error: {err}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
