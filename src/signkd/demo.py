"""`signkd demo`: a local web page over `recognize` -- upload or record a video, read the glosses.

The page calls `signkd.recognize.recognize`, as `signkd recognize` does, and shows what its
`--json` prints in a form a person reads: the overlay video (landmarks, the caption growing as
glosses are recognised), a gloss timeline with time spans and confidences (below the
"outside what this model knows" threshold marked), the correction, the step timings and the
real-time factor, and one clear state for each way a video can fail (nobody signing, too
short, unreadable, outside what the model knows). A second tab captions the webcam live with
`signkd.live`'s recogniser.

It serves on 127.0.0.1 only and needs no network: Gradio's analytics are off, its fonts are the
ones it ships (`LocalFont`), and nothing is shared. Gradio is an optional extra:
`pip install -e ".[demo]"`.
"""

from __future__ import annotations

import html
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from signkd.recognize import DEFAULT_MODEL, MIN_CONFIDENCE, RecognizeError, recognize

REGISTRY_MODEL = "models:/signkd-synthetic-student@champion"
DEFAULT_CORRECTOR = Path("models/correct")
KEEP_OVERLAYS = 4  # the page's latest overlays; Gradio keeps its own copy of what it served

# What each state says at the top of the page: (heading, what to do)
STATE_TEXT = {
    "recognized": ("Recognised", ""),
    "outside_vocabulary": ("Outside what this model knows",
                           "The mean gloss confidence is below what 98% of dev videos reach: the glosses below are a guess."),
    "no_gloss": ("No gloss recognised", "Signing was seen, but no sign this model knows."),
    "not_signing": ("Nobody is signing", "Record a person signing, upper body and hands in view."),
    "too_short": ("Too short", "Record at least a second of signing."),
    "unreadable": ("Unreadable video", "Give a video file (.mp4, .webm, .avi) that plays."),
    "no_model": ("No model", "Pick a model that exists: run `make repro`, or give a path to an exported .onnx."),
    "error": ("Cannot recognise this video", ""),
}


@dataclass
class PageResult:
    """Everything the upload tab shows, built from one `recognize` call (kept free of Gradio so it
    is tested without a browser)."""

    state: str
    status: str  # markdown: the state's heading, its advice, the error line
    glosses: str
    overlay: str | None
    timeline: str  # html
    correction: str  # markdown
    timings: str  # markdown
    summary: dict  # what `signkd recognize --json` prints


def analyse(video: str | Path | None, model: str | Path = DEFAULT_MODEL, corrector: str | Path | None = DEFAULT_CORRECTOR,
            overlay_dir: Path | None = None) -> PageResult:
    """Recognise `video` for the page; every expected failure becomes a state, never an exception."""
    if not video:
        return _failed("unreadable", "No video: upload a file or record one with the webcam.")
    overlay = None
    if overlay_dir is not None:
        overlay = overlay_dir / f"overlay-{time.time_ns()}.webm"
        _keep_latest(overlay_dir, KEEP_OVERLAYS - 1)
    corrector = corrector if corrector is not None and Path(corrector).is_dir() else None
    try:
        result = recognize(video, model or DEFAULT_MODEL, corrector_dir=corrector, overlay=overlay)
    except RecognizeError as err:
        return _failed(err.state, str(err))
    summary = result.summary()
    heading, advice = STATE_TEXT[result.state]
    status = f"### {heading}\n\nmean gloss confidence {result.confidence:.2f} (threshold {MIN_CONFIDENCE:.2f})"
    return PageResult(result.state, status + (f"\n\n{advice}" if advice else ""), summary["glosses"],
                      str(overlay) if overlay is not None and overlay.is_file() else None,
                      timeline_html(summary["confidences"]), correction_text(summary, corrector), timings_text(summary), summary)


def _failed(state: str, message: str) -> PageResult:
    heading, advice = STATE_TEXT.get(state, STATE_TEXT["error"])
    status = f"### {heading}\n\n{advice}\n\n`{message}`" if advice else f"### {heading}\n\n`{message}`"
    return PageResult(state, status, "", None, "", "", "", {"state": state, "error": message})


def _keep_latest(directory: Path, keep: int) -> None:
    old = sorted(directory.glob("overlay-*.webm"), key=lambda p: p.stat().st_mtime)
    for path in old[:max(0, len(old) - keep)]:
        path.unlink(missing_ok=True)


def timeline_html(spans: list[dict]) -> str:
    """One block per gloss: the gloss, its time span and confidence; below the threshold marked."""
    if not spans:
        return "<p>no glosses</p>"
    blocks = []
    for s in spans:
        low = s["confidence"] < MIN_CONFIDENCE
        blocks.append(f'<div class="gloss{" low" if low else ""}" data-gloss="{html.escape(s["gloss"])}" '
                      f'data-confidence="{s["confidence"]:.4f}"><b>{html.escape(s["gloss"])}</b>'
                      f'<span>{s["start_s"]:.2f}–{s["end_s"]:.2f} s</span>'
                      f'<span>{s["confidence"]:.2f}{" (low)" if low else ""}</span></div>')
    return f'<div class="timeline">{"".join(blocks)}</div>'


def correction_text(summary: dict, corrector: str | Path | None) -> str:
    if corrector is None:
        return "Correction not applied: no correction model here (`make repro` trains one)."
    if summary["correction"] != "applied":
        return "Correction not applied: the corrector was calibrated on dev to accept no change."
    changed = "unchanged" if summary["corrected"] == summary["glosses"] else "changed"
    return (f"**Corrected glosses** ({changed}): {summary['corrected']}\n\n"
            "No German sentence: this model corrects glosses and does not translate.")


def timings_text(summary: dict) -> str:
    rows = "\n".join(f"| {step} | {seconds:.2f} |" for step, seconds in summary["seconds"].items())
    rate = f"{summary['source_fps']:g} fps video, read at the model's {summary['fps']:g} fps"
    return (f"| step | seconds |\n|---|---:|\n{rows}\n\nreal-time factor **{summary['real_time_factor']:.2f}** "
            f"(processing seconds per second of video; {rate}; the overlay is not counted)")


CSS = """
.timeline {display: flex; flex-wrap: wrap; gap: 6px}
.timeline .gloss {border: 1px solid #6a8caf; border-radius: 6px; padding: 4px 8px; display: flex; flex-direction: column}
.timeline .gloss.low {border-color: #c0392b; background: #fdecea}
"""


def UNMIRRORED(gr):  # noqa: N802 - reads as the constant it stands for
    """Webcam frames as the camera sees them: a mirrored signer would sign with the other hand, and
    the models tell the hands apart (Gradio mirrors by default)."""
    return gr.WebcamOptions(mirror=False)


def build(model: str = str(DEFAULT_MODEL), corrector: str | Path | None = DEFAULT_CORRECTOR):
    """The page (a gr.Blocks, not yet launched)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    overlay_dir = Path(tempfile.mkdtemp(prefix="signkd-demo-"))
    choices = list(dict.fromkeys([model, str(DEFAULT_MODEL), REGISTRY_MODEL]))

    def on_recognise(video, chosen):
        page = analyse(video, chosen, corrector, overlay_dir)
        return page.status, page.glosses, page.overlay, page.timeline, page.correction, page.timings, page.summary

    with gr.Blocks(title="SignKD demo", analytics_enabled=False) as app:
        gr.Markdown("# SignKD: sign language to glosses, on this computer\n"
                    "MediaPipe keypoints → int8 student → CTC decoder → gloss correction. Nothing leaves this machine.")
        picker = gr.Dropdown(choices, value=model, allow_custom_value=True, label="model (a path to an exported .onnx, "
                             "or a registry URI such as the @champion)", elem_id="model")
        with gr.Tab("Video"):
            with gr.Row():
                video = gr.Video(sources=["upload", "webcam"], label="video: upload a file or record with the webcam",
                                 webcam_options=UNMIRRORED(gr), height=420, elem_id="video")
                overlay = gr.Video(label="what the model saw: landmarks and the caption as glosses come",
                                   interactive=False, height=420, elem_id="overlay")
            go = gr.Button("Recognise", variant="primary", elem_id="recognise")
            status = gr.Markdown(elem_id="status")
            glosses = gr.Textbox(label="glosses", interactive=False, elem_id="glosses")
            timeline = gr.HTML(elem_id="timeline")
            correction = gr.Markdown(elem_id="correction")
            timings = gr.Markdown(elem_id="timings")
            with gr.Accordion("as `signkd recognize --json` prints it", open=False):
                summary = gr.JSON(elem_id="summary")
            go.click(on_recognise, [video, picker], [status, glosses, overlay, timeline, correction, timings, summary])
        with gr.Tab("Live (webcam)"):
            live_tab(gr, picker)
    return app


def live_tab(gr, picker) -> None:
    """Webcam frames stream to `signkd.live`'s recogniser; captions appear as they are committed."""
    from signkd.live import LiveRecognizer, warm_tracker

    camera = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="webcam", height=420,
                      webcam_options=UNMIRRORED(gr), elem_id="camera")
    captions = gr.Textbox(label="live captions (`?`: below the confidence threshold)", interactive=False, elem_id="captions")
    state = gr.State(None)

    def on_frame(frame, session, chosen):
        if frame is None:
            return session, gr.skip()
        if session is None:
            session = {"recognizer": LiveRecognizer(chosen or DEFAULT_MODEL), "tracker": warm_tracker(),
                       "start": time.perf_counter()}
        live, now = session["recognizer"], time.perf_counter()
        live.frame_size = live.frame_size or (int(frame.shape[0]), int(frame.shape[1]))
        points, mask = session["tracker"].process(frame[:, :, ::-1])  # Gradio gives RGB, MediaPipe's wrapper takes BGR
        live.add(now - session["start"], now, points, mask)
        text = " ".join(c.gloss + ("" if c.confidence >= MIN_CONFIDENCE else "?") for c in live.result.captions)
        return session, text

    camera.stream(on_frame, [camera, state, picker], [state, captions], stream_every=0.1, concurrency_limit=1)


def serve(model: str, port: int, corrector: str | Path | None = DEFAULT_CORRECTOR, open_browser: bool = False):
    """Start the page on 127.0.0.1:`port` (blocks until Ctrl-C)."""
    app = build(model, corrector)
    import gradio as gr

    theme = gr.themes.Default()  # LocalFont: the fonts ship with Gradio, none are fetched
    app.launch(server_name="127.0.0.1", server_port=port, share=False, inbrowser=open_browser, ssr_mode=False,
               footer_links=[], theme=theme, css=CSS, quiet=False, mcp_server=False)
