"""Slow and vanishing clients, through a real uvicorn server and raw sockets.

Issue 10: two connections that sent their headers and then trickled the body held both
analysis slots (the default ``max_concurrent_requests``), so every other client got 503
for as long as they stayed open; a client that hung up mid-body was a 500 with a
traceback; and SIGTERM waited for an incomplete upload without end.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.api import create_app
from service.settings import Settings
from tests.ports import free_port

BOUNDARY = "flexliveboundary"


def _png(arr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", arr)
    assert ok
    return buf.tobytes()


def crop_files() -> dict[str, tuple[str, bytes, str]]:
    rng = np.random.default_rng(0)
    rgb = rng.integers(120, 220, (64, 64, 3), dtype=np.uint8)
    return {"rgb": ("rgb.png", _png(rgb), "image/png")}


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def wait_ready(client: httpx.Client, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "server never became ready"
        time.sleep(0.05)


class Trickler:
    """A raw HTTP client that sends complete headers, then its body a few bytes at a time
    (or not at all), then reads whatever the server answers."""

    def __init__(
        self, url: str, declared: int = 200_000, chunk: bytes = b"-", every_s: float = 0.2
    ) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.declared = declared
        self.chunk = chunk
        self.every_s = every_s
        self.stop = threading.Event()
        self.response = b""
        self.answered_after: float | None = None
        self.started = time.monotonic()
        head = (
            "POST /liveness HTTP/1.1\r\n"
            f"Host: {host}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {declared}\r\n\r\n"
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="rgb"; filename="a.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        )
        self.sock.sendall(head.encode())
        self.writer = threading.Thread(target=self._trickle, daemon=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.writer.start()
        self.reader.start()

    def _trickle(self) -> None:
        while not self.stop.wait(self.every_s):
            if not self.chunk:
                continue
            try:
                self.sock.sendall(self.chunk)
            except OSError:
                return

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            if self.answered_after is None:
                self.answered_after = time.monotonic() - self.started
            self.response += data
        self.stop.set()

    def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(OSError):  # a close alone waits for the reader's recv
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def status_and_body(self) -> tuple[int, dict[str, Any], str]:
        head, _, body = self.response.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        return status, json.loads(body) if body else {}, head.decode("latin-1").lower()


@pytest.fixture
def trickle_server(test_model_path: Path, live_server: Any) -> Iterator[tuple[str, httpx.Client]]:
    # Two analysis slots (what the reported defect had) and the default queue; a short
    # body deadline for the test.
    settings = Settings(
        model_path=test_model_path,
        body_timeout_s=2.0,
        rgb_expert=False,
        max_concurrent_requests=2,
    )
    with live_server(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as c:
        wait_ready(c)
        yield url, c


def test_trickling_uploads_hold_no_slot_and_time_out(
    trickle_server: tuple[str, httpx.Client],
) -> None:
    url, client = trickle_server
    tricklers = [Trickler(url), Trickler(url, chunk=b"")]  # a trickle, and silence
    try:
        time.sleep(0.5)  # both are now connected, headers sent, bodies incomplete
        receiving = metric(client.get("/metrics").text, "liveness_receiving_requests")
        assert receiving == 2
        # A third, normal client is served while both slow uploads are open.
        for _ in range(3):
            r = client.post("/liveness", files=crop_files(), data={"cropped": "true"})
            assert r.status_code == 200, r.text
        assert all(t.answered_after is None for t in tricklers)  # still open meanwhile
        for t in tricklers:
            t.reader.join(timeout=10)
            assert t.answered_after is not None, "slow upload never answered"
            assert 1.5 <= t.answered_after <= 4.0, t.answered_after
            status, body, head = t.status_and_body()
            assert status == 408
            assert "content-type: application/problem+json" in head
            assert "connection: close" in head
            assert body["type"].endswith("/body-timeout") and body["field"] == "body"
            assert "LIVENESS_BODY_TIMEOUT_S" in body["detail"]
            assert not t.reader.is_alive()  # the server closed the connection
    finally:
        for t in tricklers:
            t.close()
    text = client.get("/metrics").text
    assert metric(text, "liveness_body_timeouts_total") == 2
    assert metric(text, "liveness_requests_total", endpoint="/liveness", status="408") == 2
    assert metric(text, "liveness_requests_total", endpoint="/liveness", status="200") == 3
    assert metric(text, "liveness_receiving_requests") == 0
    # complete bodies are timed: the three normal uploads (and this scrape's empty body)
    assert metric(text, "liveness_body_read_seconds_count") >= 3
    assert client.get("/healthz").status_code == 200


def test_client_disconnect_mid_body_is_no_server_error(
    trickle_server: tuple[str, httpx.Client], caplog: pytest.LogCaptureFixture
) -> None:
    url, client = trickle_server
    with caplog.at_level(logging.INFO):
        t = Trickler(url, chunk=b"x" * 1000, every_s=0.05)
        time.sleep(0.3)
        t.close()  # hang up with the body incomplete
        deadline = time.monotonic() + 10
        while True:
            text = client.get("/metrics").text
            if metric(text, "liveness_client_disconnects_total", endpoint="/liveness") >= 1:
                break
            assert time.monotonic() < deadline, "the disconnect was never counted"
            time.sleep(0.05)
    assert metric(text, "liveness_client_disconnects_total", endpoint="/liveness") == 1
    assert metric(text, "liveness_requests_total", endpoint="/liveness", status="499") == 1
    assert metric(text, "liveness_requests_total", status="500") == 0
    assert metric(text, "liveness_body_timeouts_total") == 0
    records = [r for r in caplog.records if r.name.startswith("service")]
    lines = [r for r in records if "disconnect" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in records]
    (line,) = lines
    assert line.levelno == logging.WARNING and line.exc_info is None and not line.exc_text
    assert getattr(line, "status", None) == 499 and getattr(line, "body_bytes_received", 0) > 0
    assert not any(r.levelno >= logging.ERROR for r in records), [
        r.getMessage() for r in records if r.levelno >= logging.ERROR
    ]
    r = client.post("/liveness", files=crop_files(), data={"cropped": "true"})
    assert r.status_code == 200  # and the server is fine


def test_sigterm_drains_with_a_deadline_while_an_upload_is_incomplete(
    test_model_path: Path, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LIVENESS_")},
        "LIVENESS_BODY_TIMEOUT_S": "300",  # the upload would outlive any patience
        "LIVENESS_SHUTDOWN_TIMEOUT_S": "2",
        "LIVENESS_RGB_EXPERT": "false",
        "LIVENESS_INTRA_OP_THREADS": "1",
    }
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--model", str(test_model_path),
         "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    trickler = None
    try:
        with httpx.Client(base_url=url, timeout=10) as c:
            wait_ready(c)
        trickler = Trickler(url)
        time.sleep(0.5)
        assert proc.poll() is None and trickler.answered_after is None
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=2 + 8)
        except subprocess.TimeoutExpired:
            pytest.fail("liveness serve did not exit within its shutdown deadline + 8 s")
        took = time.monotonic() - sent
        assert took <= 2 + 3, f"exited after {took:.1f} s (deadline 2 s)"
        assert took >= 1.5, f"exited after {took:.1f} s: it did not wait for the upload at all"
        # uvicorn re-raises the signal once it has shut down: killed by SIGTERM, cleanly
        assert code in (0, -signal.SIGTERM), (tmp_path / "serve.log").read_text()[-2000:]
    finally:
        if trickler is not None:
            trickler.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
    text = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in text, text[-3000:]
    assert "timeout graceful shutdown exceeded" in text  # the upload was cut, not awaited
