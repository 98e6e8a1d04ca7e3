"""`signkd` command line: recognise a video on the CPU, check params, show the results table.

  signkd recognize my_video.mp4          # video -> MediaPipe -> int8 student -> decoder -> correction
  signkd recognize clip.webm --json --overlay clip_glosses.mp4 --model models:/signkd-synthetic-student@champion
  signkd live --camera 0                  # live captions from the first camera (--stream FILE: a file as a camera)
  signkd check-params [params.yaml]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from signkd.errors import one_line


def _recognize(args: argparse.Namespace) -> int:
    from signkd.features.overlay import OVERLAY_CODECS
    from signkd.inference import DecodeConfig
    from signkd.recognize import RecognizeError, recognize

    if args.overlay is not None and args.overlay.suffix.lower() not in OVERLAY_CODECS:
        print(one_line(f"error: --overlay {args.overlay}: write the overlay as {', '.join(OVERLAY_CODECS)}"), file=sys.stderr)
        return 1
    decoding = DecodeConfig(args.decoder, args.beam_width) if args.decoder else None
    corrector = None if args.no_correction or not Path(args.corrector).is_dir() else args.corrector
    try:
        result = recognize(args.video, args.model, decoding=decoding, corrector_dir=corrector, fps=args.fps,
                           overlay=args.overlay, threads=args.threads)
    except RecognizeError as err:
        print(one_line(f"error: {err}"), file=sys.stderr)
        return 1
    summary = result.summary()
    if args.overlay is not None:
        summary["overlay"] = str(args.overlay)
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        steps = ", ".join(f"{k} {v:.2f} s" for k, v in result.timings.items())
        sure = " ".join(f"{s.gloss}({s.confidence:.2f})" for s in result.spans)
        rate = f"{result.fps:g} fps" + (f", from {result.source_fps:g}" if abs(result.source_fps - result.fps) > 0.01 * result.fps else "")
        print(f"{summary['corrected']}\n(raw: {sure or '-'}; {result.frames} frames at {rate}; "
              f"{steps}; real-time factor {summary['real_time_factor']})")
    if result.glosses and not result.known:  # no gloss at all has its own message below
        from signkd.recognize import MIN_CONFIDENCE

        print(f"note: outside what this model knows: mean gloss confidence {result.confidence:.2f} is below "
              f"{MIN_CONFIDENCE:.2f} (reached by 98% of dev videos); the glosses above are a guess", file=sys.stderr)
    if result.correction == "not applied":
        print(f"note: correction not applied: the corrector at {args.corrector} was calibrated on dev to accept "
              "no change, so it was not loaded", file=sys.stderr)
    if corrector is None and not args.no_correction:
        print(f"note: no correction model at {args.corrector}; showing the recogniser's glosses", file=sys.stderr)
    if not result.glosses:  # signing was seen, but no gloss came out: say so, and not with exit code 0
        print(one_line(f"error: {args.video}: signing seen, but the model recognised no gloss in {result.frames} "
                       "frames; the signs may be outside its vocabulary"), file=sys.stderr)
        return 3
    return 0


def _check_params(args: argparse.Namespace) -> int:
    from signkd.params import ParamsError, load_params

    try:
        load_params(args.params)
    except ParamsError as err:  # YAML syntax, encoding and every bad key: one line each, no traceback
        print("\n".join(one_line(line) for line in f"error: {err}".splitlines()), file=sys.stderr)
        return 2
    print(f"{args.params}: ok")
    return 0


class _OneLineParser(argparse.ArgumentParser):
    """A bad argument is one line naming it and what it takes (no usage block before it)."""

    def error(self, message: str):
        # an argument holding a line break is shown escaped: still one line (found by fuzzing)
        self.exit(2, one_line(f"{self.prog}: error: {message} (see {self.prog} --help)") + "\n")


def _positive(kind: type, what: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


def _live(args: argparse.Namespace) -> int:
    import threading

    from signkd.live import LatestFrame, LiveRecognizer, play_file, read_camera, run_live, warm_tracker
    from signkd.recognize import MIN_CONFIDENCE, RecognizeError

    def show(caption) -> None:
        if not args.json:  # `?`: below recognize's "outside what this model knows" threshold
            mark = "" if caption.confidence >= MIN_CONFIDENCE else "?"
            print(f"{caption.gloss}{mark} ({caption.confidence:.2f}, {caption.start_s:.1f}-{caption.end_s:.1f} s, "
                  f"after {caption.latency_s:.2f} s)", flush=True)

    stop = threading.Event()
    try:
        recognizer = LiveRecognizer(args.model, on_caption=show)
        tracker, slot = warm_tracker(), LatestFrame()  # MediaPipe loaded before the first frame arrives
        if args.stream is not None:
            if not args.stream.exists():
                raise RecognizeError(f"{args.stream} does not exist: give a video file or a folder of frame images")
            play_file(args.stream, slot, args.fps)
        else:
            read_camera(args.camera, slot, stop)
        result = run_live(slot, recognizer, tracker)
    except (RecognizeError, RuntimeError) as err:
        print(one_line(f"error: {err}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        stop.set()
        return 130
    import numpy as np

    latencies = [c.latency_s for c in result.captions]
    summary = {"glosses": " ".join(result.glosses), "stride": result.stride,
               "frames_published": result.frames_published, "frames_processed": result.frames_processed,
               "mediapipe_ms_median": round(1000 * float(np.median(result.mediapipe_s)), 1) if result.mediapipe_s else None,
               "latency_median_s": round(float(np.median(latencies)), 3) if latencies else None,
               "latency_p95_s": round(float(np.percentile(latencies, 95)), 3) if latencies else None,
               "captions": [c.__dict__ for c in result.captions]}
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        print(f"-- {summary['glosses'] or '(no glosses)'}; MediaPipe on {result.frames_processed} of "
              f"{result.frames_published} frames (stride {result.stride:g} on the model's frame grid); latency median "
              f"{summary['latency_median_s']} s, p95 {summary['latency_p95_s']} s")
    return 0


def _demo(args: argparse.Namespace) -> int:
    import importlib.util

    if importlib.util.find_spec("gradio") is None:
        print('error: the demo needs Gradio, an optional extra: pip install -e ".[demo]"', file=sys.stderr)
        return 1
    from signkd import demo

    print(f"SignKD demo on http://127.0.0.1:{args.port} (Ctrl-C stops it); model {args.model}", flush=True)
    try:
        demo.serve(args.model, args.port, None if args.no_correction else args.corrector, args.open)
    except KeyboardInterrupt:
        return 130
    except OSError as err:
        print(one_line(f"error: cannot serve on 127.0.0.1:{args.port} ({err}); pick another --port"), file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _OneLineParser(prog="signkd", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("recognize", help="glosses (and corrected glosses) for a video file or a folder of frames")
    rec.add_argument("video", type=Path, help=".mp4/.avi/.webm/.mov/.mkv file or a folder of frame images")
    rec.add_argument("--model", default="models/quantize/student_int8.onnx",
                     help="exported student: an .onnx path (default: the pipeline's int8 model) or an MLflow model "
                          "URI such as models:/signkd-synthetic-student@champion (store: MLFLOW_TRACKING_URI)")
    rec.add_argument("--corrector", default="models/correct", help="correction model folder (default: models/correct)")
    rec.add_argument("--decoder", choices=("greedy", "beam"), default=None, help="default: as the model was trained")
    rec.add_argument("--beam-width", type=_positive(int, "a whole number of beams >= 1"), default=5)
    rec.add_argument("--fps", type=_positive(float, "a finite frame rate > 0, e.g. 25"), default=None,
                     help="override the frame rate (default: the video's own; 25 for frame folders)")
    rec.add_argument("--threads", type=_positive(int, "a whole number of threads >= 1"), default=1,
                     help="CPU threads for the model and the corrector (small models beside other work run fastest on 1)")
    rec.add_argument("--no-correction", action="store_true")
    rec.add_argument("--json", action="store_true", help="print a JSON summary, with a confidence and time span per gloss")
    rec.add_argument("--overlay", type=Path, default=None,
                     help="also write the video with the landmarks and the running gloss caption (.mp4 or .avi)")
    rec.set_defaults(func=_recognize)
    live = sub.add_parser("live", help="live captions from a camera, or from a file played at its own frame rate")
    source = live.add_mutually_exclusive_group(required=True)
    source.add_argument("--camera", type=int, metavar="N", help="camera index (0: the first camera)")
    source.add_argument("--stream", type=Path, metavar="FILE", help="a video file or frame folder, played as a camera")
    live.add_argument("--model", default="models/quantize/student_int8.onnx", help="exported student (.onnx or models:/ URI)")
    live.add_argument("--fps", type=_positive(float, "a finite frame rate > 0, e.g. 25"), default=None,
                      help="--stream only: play at this rate (default: the file's own)")
    live.add_argument("--json", action="store_true", help="print a JSON summary at the end (captions, latency, stride)")
    live.set_defaults(func=_live)

    page = sub.add_parser("demo", help="a local web page: upload or record a video, see glosses, overlay, timeline (extra: .[demo])")
    page.add_argument("--model", default="models/quantize/student_int8.onnx", help="the model first shown in the picker")
    page.add_argument("--corrector", default="models/correct", help="correction model folder (default: models/correct)")
    page.add_argument("--no-correction", action="store_true")
    page.add_argument("--port", type=_positive(int, "a port number, e.g. 7860"), default=7860)
    page.add_argument("--open", action="store_true", help="open the page in the default browser")
    page.set_defaults(func=_demo)
    chk = sub.add_parser("check-params", help="validate params.yaml")
    chk.add_argument("params", nargs="?", default="params.yaml")
    chk.set_defaults(func=_check_params)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except Exception as err:  # noqa: BLE001 - a CLI prints input errors, not tracebacks
        from signkd.features.frames import FrameSourceError

        if isinstance(err, (FrameSourceError, FileNotFoundError)):
            print(one_line(f"error: {err}"), file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
