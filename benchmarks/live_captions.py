"""Live captions against offline `recognize`, on the default corpus's test videos.

Each video is streamed as a camera would deliver it (`signkd live --stream`: its own frame rate,
only the newest frame kept when MediaPipe falls behind), and also recognised offline (every
frame). Both hypotheses are scored against the references; latency is the time from a gloss's
last aligned frame to its caption. Run it pinned to one core on a quiet machine:

    taskset -c 0 python benchmarks/live_captions.py --videos 10

Writes reports/live/metrics.json: live_wer, offline_wer, latency_median_s, latency_p95_s, and the
stride live mode ran at, MediaPipe's time per frame and how many frames it skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from signkd.data.manifest import read_manifest
from signkd.io import write_json
from signkd.live import stream_file
from signkd.recognize import DEFAULT_MODEL, recognize
from signkd.scoring import official_wer


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=10)
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--manifest", default="data/manifest")
    parser.add_argument("--json", default="reports/live/metrics.json")
    args = parser.parse_args(argv)
    samples = read_manifest(args.manifest, "test")[: args.videos]
    refs, live, offline, latencies, strides, mediapipe, published, processed = [], [], [], [], [], [], 0, 0
    for sample in samples:
        source = Path(sample.frames_dir)
        result = stream_file(args.model, source)
        offline_hyp = recognize(source, args.model).glosses
        refs.append(list(sample.glosses))
        live.append(result.glosses)
        offline.append(offline_hyp)
        latencies += [c.latency_s for c in result.captions]
        strides += result.strides
        mediapipe += result.mediapipe_s
        published, processed = published + result.frames_published, processed + result.frames_processed
        print(f"{sample.id}: ref {' '.join(sample.glosses)} | live {' '.join(result.glosses)} | offline {' '.join(offline_hyp)}",
              file=sys.stderr)
    metrics = {
        "videos": len(samples),
        "live_wer": round(official_wer(refs, live).wer, 3),
        "offline_wer": round(official_wer(refs, offline).wer, 3),
        "latency_median_s": round(float(np.median(latencies)), 3) if latencies else None,
        "latency_p95_s": round(float(np.percentile(latencies, 95)), 3) if latencies else None,
        "stride_median": float(np.median(strides)) if strides else 1.0,
        "frames_published": published,
        "frames_processed": processed,
        "mediapipe_ms_median": round(1000 * float(np.median(mediapipe)), 1) if mediapipe else None,
        "same_glosses_as_offline": sum(a == b for a, b in zip(live, offline)),
    }
    write_json(Path(args.json), metrics)
    print(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main()
