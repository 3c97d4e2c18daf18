"""``liveness serve --workers 2``: a scrape of /metrics counts the whole service, whichever
worker answers it (prometheus-client's multiprocess mode), and the shared directory
``serve`` made is gone after it stops."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import httpx
import numpy as np

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def _counted(text: str) -> float:
    """Liveness requests answered 200, summed over label sets."""
    total = 0.0
    for line in text.splitlines():
        ours = 'endpoint="/liveness"' in line and 'status="200"' in line
        if line.startswith("liveness_requests_total{") and ours:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_sum_every_worker(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "LIVENESS_LOG_LEVEL": "WARNING", "TMPDIR": str(tmp_path)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--workers", "2"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    crop = cv2.imencode(".png", np.full((112, 112, 3), 128, np.uint8))[1].tobytes()
    try:
        deadline = time.monotonic() + 120
        ready = 0
        while time.monotonic() < deadline and ready < 6:  # both workers answer ready
            try:
                ready = ready + 1 if httpx.get(f"{url}/readyz").status_code == 200 else 0
            except httpx.TransportError:
                ready = 0
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            time.sleep(0.2)
        assert ready >= 6, "the service did not become ready"
        shared = [p for p in tmp_path.iterdir() if p.name.startswith("flexlive-metrics-")]
        assert len(shared) == 1 and any(shared[0].iterdir()), shared
        n = 16
        for _ in range(n):  # a new connection each time: both workers answer some
            r = httpx.post(
                f"{url}/liveness", files={"rgb": ("c.png", crop)}, data={"cropped": "true"}
            )
            assert r.status_code == 200, r.text
        for _ in range(6):
            text = httpx.get(f"{url}/metrics").text
            assert _counted(text) == n, text[:3000]
            assert re.search(r"^liveness_ready 1\.0$", text, re.M), text[:3000]
            assert re.search(r"^liveness_in_flight_requests 0\.0$", text, re.M)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert not shared[0].exists()  # serve removed the directory it made
