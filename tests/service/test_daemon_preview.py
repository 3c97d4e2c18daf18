"""The live preview page shows frames, boxes and decisions in a real (headless) Chromium."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator

import pytest
from daemon_testing import MarkerAnalyzer, ScriptedSource

from service.daemon.config import DaemonConfig
from service.daemon.outputs import Output
from service.daemon.runner import LivenessDaemon

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


class Null(Output):
    def close(self, timeout: float) -> None:
        pass


@pytest.fixture
def running_daemon() -> Iterator[str]:
    stop = threading.Event()

    def endless() -> Iterator[str]:
        while not stop.is_set():
            yield "f"

    script = endless()
    daemon = LivenessDaemon(
        lambda: ScriptedSource(script, period=0.03),
        MarkerAnalyzer(),
        [Null()],
        DaemonConfig(http_port=0),
    )
    url = daemon.start_http()
    assert url is not None
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        yield url
    finally:
        stop.set()
        daemon.stop()
        thread.join(10)


def test_preview_page_shows_live_frames_and_decisions(running_daemon: str) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    with tempfile.TemporaryDirectory() as profile, playwright.sync_playwright() as p:
        # a fresh profile directory (playwright's way of passing --user-data-dir)
        browser = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=FLAGS, headless=True
        )
        try:
            page = browser.new_page()
            page.goto(running_daemon + "/")
            # several distinct frames have been loaded and decoded into the <img>
            page.wait_for_function(
                "() => { const i = document.getElementById('frame');"
                " return Number(i.dataset.frames) >= 3 && i.naturalWidth > 0; }",
                timeout=20_000,
            )
            size = page.evaluate(
                "() => { const i = document.getElementById('frame');"
                " return [i.naturalWidth, i.naturalHeight]; }"
            )
            # colour, depth and IR side by side (the marker frames carry all three)
            assert size == [3 * 160, 120]
            first = int(page.get_attribute("#frame", "data-seq") or -1)
            page.wait_for_function(
                f"() => Number(document.getElementById('frame').dataset.seq) > {first}",
                timeout=10_000,
            )
            # the face table lists the track and, after enough frames, its decision
            page.wait_for_function(
                "() => document.querySelector('#faces tbody td.live') !== null",
                timeout=20_000,
            )
            assert page.inner_text("#faces tbody tr td") == "#1"
            assert page.inner_text("#state") == "ready"
            # the drawn overlay: the box colour (green for live) is in the picture
            green = page.evaluate(
                """() => { const i = document.getElementById('frame');
                const c = document.createElement('canvas'); c.width = i.naturalWidth;
                c.height = i.naturalHeight; const g = c.getContext('2d'); g.drawImage(i, 0, 0);
                const d = g.getImageData(0, 0, c.width, c.height).data; let n = 0;
                for (let k = 0; k < d.length; k += 4)
                  if (d[k + 1] > 170 && d[k] < 110 && d[k + 2] < 110) n++;
                return n; }"""
            )
            assert green > 50
            # per-modality health: all three used
            page.wait_for_function(
                "() => document.querySelectorAll('#health span.used').length === 3",
                timeout=10_000,
            )
            assert page.inner_text("#health span[data-modality='depth']") == "depth: used"
            # the decision appears in the event list with a decoded snapshot of the face
            page.wait_for_function(
                "() => { const i = document.querySelector('#events li img');"
                " return i !== null && i.complete && i.naturalHeight === 96; }",
                timeout=20_000,
            )
            assert "uncertain → live" in page.inner_text("#events li")
        finally:
            browser.close()
