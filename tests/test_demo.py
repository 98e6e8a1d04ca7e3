"""`signkd demo`: the page's states and views from `recognize`, then the real page in headless Chromium.

The browser test starts `signkd demo` as a user would, uploads a rendered sentence, and checks
that the page shows the glosses `signkd recognize --json` prints for the same file, that a still
video shows "Nobody is signing", and that the page fetched nothing from any host but 127.0.0.1.
It saves a screenshot: to reports/demo/ when it ran the pipeline's own model on a default test
video (after `make repro`), else next to the test's other files.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from signkd.cli import main
from tests.test_cli import _confident_student

ROOT = Path(__file__).resolve().parents[1]
PIPELINE_MODEL = ROOT / "models" / "quantize" / "student_int8.onnx"
PIPELINE_CORRECTOR = ROOT / "models" / "correct"
REPORT = ROOT / "reports" / "demo"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _write(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    fourcc = "VP80" if path.suffix == ".webm" else "mp4v"  # .webm: what the browser can show as well
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, frames[0].shape[1::-1])
    for f in frames:
        writer.write(f)
    writer.release()
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A rendered signed sentence, the same signer holding still, and one frame of it."""
    from signkd.data.render import make_signer, render_video

    out = tmp_path_factory.mktemp("demo")
    rng = np.random.default_rng(5)
    frames = render_video(("REGEN", "SONNE", "WIND"), make_signer(1, rng), rng).frames
    return {"signed": _write(out / "signed.mp4", frames), "still": _write(out / "still.mp4", [frames[0]] * 75),
            "one_frame": _write(out / "one.mp4", [frames[0]]), "garbage": _garbage(out / "broken.mp4")}


def _garbage(path: Path) -> Path:
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    return path


# --- the page's content, without a browser ------------------------------------------------------

def test_the_page_shows_what_recognize_json_prints(tmp_path, capsys, clips):
    from signkd.demo import analyse

    model = _confident_student(tmp_path)
    assert main(["recognize", str(clips["signed"]), "--model", str(model), "--no-correction", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    page = analyse(clips["signed"], model, corrector=None, overlay_dir=tmp_path)
    assert page.state == printed["state"] == "recognized" and page.glosses == printed["glosses"] == "SONNE"
    assert page.summary["confidences"] == printed["confidences"]
    assert 'data-gloss="SONNE"' in page.timeline and "low" not in page.timeline
    assert "Correction not applied" in page.correction
    assert all(f"| {step} |" in page.timings for step in printed["seconds"]) and "real-time factor" in page.timings
    frames = cv2.VideoCapture(page.overlay)
    assert page.overlay.endswith(".webm") and frames.read()[0], "a VP8 overlay a browser plays"


def test_a_gloss_below_the_threshold_is_marked_low_and_the_state_says_outside(tmp_path, clips, monkeypatch):
    from signkd.demo import analyse

    monkeypatch.setattr("signkd.recognize.MIN_CONFIDENCE", 0.9)  # the confident student's gloss has 0.870
    monkeypatch.setattr("signkd.demo.MIN_CONFIDENCE", 0.9)
    page = analyse(clips["signed"], _confident_student(tmp_path), corrector=None)
    assert page.state == "outside_vocabulary" and "Outside what this model knows" in page.status
    assert 'class="gloss low"' in page.timeline and "(low)" in page.timeline


@pytest.mark.parametrize("clip, state, heading", [("still", "not_signing", "Nobody is signing"),
                                                  ("one_frame", "too_short", "Too short"),
                                                  ("garbage", "unreadable", "Unreadable video")])
def test_each_failure_has_its_own_state(tmp_path, clips, clip, state, heading):
    from signkd.demo import analyse

    page = analyse(clips[clip], _confident_student(tmp_path), corrector=None)
    assert page.state == state and heading in page.status and page.glosses == ""


def test_a_missing_model_is_a_state_not_a_traceback(tmp_path, clips):
    from signkd.demo import analyse

    page = analyse(clips["signed"], tmp_path / "none.onnx", corrector=None)
    assert page.state == "no_model" and "none.onnx" in page.status


def test_a_webm_recording_without_a_frame_rate_is_timed_from_its_frames(tmp_path):
    """A WebM whose container says 1000 fps (a 1 ms time base) is read at its frames' real rate."""
    from signkd.recognize import _fps_from_timestamps

    path = tmp_path / "rec.webm"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), 20.0, (64, 48))
    for i in range(20):
        writer.write(np.full((48, 64, 3), i * 10, np.uint8))
    writer.release()
    cap = cv2.VideoCapture(str(path))
    assert _fps_from_timestamps(cap) == pytest.approx(20.0, rel=0.02)


# --- the real page in headless Chromium ---------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1450",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):  # no host but this one resolves
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def _requested_hosts(driver) -> set[str]:
    from urllib.parse import urlparse

    hosts = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if url.startswith(("http://", "https://", "ws://", "wss://")):
                hosts.add(urlparse(url).hostname)
    return hosts


def _recognise(driver, video: Path, timeout: float = 120.0) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    upload = WebDriverWait(driver, 60).until(ec.presence_of_element_located((By.CSS_SELECTOR, "#video input[type=file]")))
    upload.send_keys(str(video))
    WebDriverWait(driver, 60).until(ec.presence_of_element_located((By.CSS_SELECTOR, "#video video")))
    driver.find_element(By.CSS_SELECTOR, "#recognise").click()
    headings = ("Recognised", "Outside what", "No gloss", "Nobody is signing", "Too short", "Unreadable", "No model", "Cannot")
    WebDriverWait(driver, timeout).until(
        lambda d: any(h in d.find_element(By.CSS_SELECTOR, "#status").text for h in headings))
    return driver.find_element(By.CSS_SELECTOR, "#status").text


@pytest.mark.browser
@pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")
def test_the_demo_page_in_a_real_browser(tmp_path, capsys, clips):
    from selenium.webdriver.common.by import By

    real = PIPELINE_MODEL.is_file() and (ROOT / "data" / "manifest" / "test.csv").is_file()
    model = PIPELINE_MODEL if real else _confident_student(tmp_path)
    video, source = _pipeline_test_video(tmp_path) if real else (clips["signed"], "a rendered sentence")
    corrector = ["--corrector", str(PIPELINE_CORRECTOR)] if real and PIPELINE_CORRECTOR.is_dir() else ["--no-correction"]
    assert main(["recognize", str(video), "--model", str(model), *corrector, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)

    port = _free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen([sys.executable, "-m", "signkd.cli", "demo", "--model", str(model), *corrector,
                               "--port", str(port)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    driver = None
    try:
        _wait_for(port, server)
        driver = _browser()
        driver.get(f"http://127.0.0.1:{port}/")
        status = _recognise(driver, video)
        shown = driver.find_element(By.CSS_SELECTOR, "#glosses textarea").get_attribute("value")
        assert shown == printed["glosses"], status
        if printed["correction"] != "off":
            assert ("Correction not applied" in driver.find_element(By.CSS_SELECTOR, "#correction").text) == \
                   (printed["correction"] == "not applied")
        blocks = driver.find_elements(By.CSS_SELECTOR, "#timeline .gloss")
        assert [b.get_attribute("data-gloss") for b in blocks] == printed["glosses"].split()
        assert [round(float(b.get_attribute("data-confidence")), 3) for b in blocks] == \
               [round(c["confidence"], 3) for c in printed["confidences"]]
        overlay = driver.find_element(By.CSS_SELECTOR, "#overlay video")
        assert overlay.get_attribute("src"), "the overlay video is on the page"
        time.sleep(1.0)  # let the overlay's first frame paint
        where = REPORT if real else tmp_path
        where.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(where / "screenshot.png"))
        if real:
            (where / "screenshot.json").write_text(json.dumps(
                {"model": str(model.relative_to(ROOT)), "video": source, "glosses": shown,
                 "state": printed["state"], "confidences": printed["confidences"],
                 "made_by": "pytest tests/test_demo.py -k browser (after make repro)"}, indent=2) + "\n")

        driver.get(f"http://127.0.0.1:{port}/")
        assert "Nobody is signing" in _recognise(driver, clips["still"])
        assert _requested_hosts(driver) <= {"127.0.0.1"}, "the page fetched from another host"
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        server.wait(timeout=30)


def _pipeline_test_video(tmp_path: Path) -> tuple[Path, str]:
    """The first default test video of four glosses or more, encoded as a video file a person would
    upload (the corpus stores frame folders), and where it came from."""
    from signkd.data.manifest import read_manifest
    from signkd.features.frames import iter_frames

    sample = next(s for s in read_manifest(ROOT / "data" / "manifest", "test") if len(s.glosses) >= 4)
    frames = list(iter_frames(ROOT / sample.frames_dir))
    return _write(tmp_path / f"{sample.id}.webm", frames), f"{sample.id} ({' '.join(sample.glosses)}), as a 25 fps .webm"


def _wait_for(port: int, server: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"signkd demo exited: {server.stdout.read().decode(errors='replace')[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"signkd demo did not listen on {port} within {timeout:.0f} s")
