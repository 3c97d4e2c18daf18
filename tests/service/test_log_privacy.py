"""Logs never carry the images a client sent: real uploads (multipart and base64 JSON, a
valid face and a corrupt image) through the app at DEBUG, every record formatted as the
service writes it (JSON lines), searched for the bytes that were sent."""

from __future__ import annotations

import base64
import json
import logging
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.api import create_app
from service.logging_setup import JsonFormatter
from service.settings import Settings


def _png(arr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", arr)
    assert ok
    return buf.tobytes()


def test_uploaded_images_never_reach_the_logs(
    test_model_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(7)
    rgb = _png(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    depth = _png(rng.integers(400, 600, (64, 64), dtype=np.uint16))
    corrupt = b"\x89PNG\r\n\x1a\n" + rng.integers(0, 255, 400, dtype=np.uint8).tobytes()
    sent = [rgb, depth, corrupt]
    caplog.set_level(logging.DEBUG)
    app = create_app(Settings(model_path=test_model_path, log_json=True))
    with TestClient(app) as client:
        for _ in range(600):
            if client.get("/readyz").status_code == 200:
                break
            time.sleep(0.05)
        ok = client.post(
            "/liveness", files={"rgb": ("a.png", rgb), "depth": ("d.png", depth)},
            data={"cropped": "true"},
        )  # fmt: skip
        assert ok.status_code == 200, ok.text
        js = client.post("/liveness", json={"rgb": base64.b64encode(rgb).decode(), "cropped": True})
        assert js.status_code == 200, js.text
        bad = client.post("/liveness", files={"rgb": ("x.png", corrupt)})
        assert bad.status_code == 422, bad.text
    lines = [JsonFormatter().format(r) for r in caplog.records]
    assert lines, "the requests logged nothing at all"
    text = "\n".join(lines)
    records = [json.loads(line) for line in lines]  # every record is one JSON line
    # the three requests were logged (access lines), so the search below means something
    access = [r for r in records if r.get("path") == "/liveness" and r.get("msg") == "request"]
    assert sorted(r["status"] for r in access)[-3:] == [200, 200, 422], access
    for blob in sent:
        for needle in (
            base64.b64encode(blob[8:72]).decode()[:40],  # base64 of the payload
            blob[8:40].hex(),  # hex dumps
            repr(blob[8:40])[2:-1],  # bytes reprs
        ):
            assert needle not in text, needle
