"""Full-frame ``POST /liveness`` (the default, ``cropped=false``) through a real server:
the face stage finds the face of a real portrait and the model scores it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from service.api import create_app
from service.settings import Settings

mpl = pytest.importorskip("matplotlib")
PORTRAIT = Path(mpl.get_data_path()) / "sample_data" / "grace_hopper.jpg"


@pytest.fixture(scope="module")
def client(test_model_path: Path, live_server: Any) -> Iterator[httpx.Client]:
    settings = Settings(model_path=test_model_path, max_faces=3)
    with live_server(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as c:
        for _ in range(600):
            if c.get("/readyz").status_code == 200:
                break
            time.sleep(0.05)
        yield c


def test_portrait_jpeg_has_one_scored_face(client: httpx.Client) -> None:
    data = PORTRAIT.read_bytes()
    r = client.post("/liveness", files={"rgb": ("grace_hopper.jpg", data, "image/jpeg")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["detector"] == "mtcnn" and body["reasons"] == []
    (face,) = body["faces"]
    h, w = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape[:2]
    x1, y1, x2, y2 = face["box"]
    assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h and (x2 - x1) > 100
    (lex, ley), (rex, rey), (nx, ny), (mlx, mly), (mrx, mry) = face["landmarks"]
    assert x1 < lex < nx < rex < x2 and max(ley, rey) < ny < min(mly, mry) < y2
    assert 0.0 <= face["score"] <= 1.0
    assert face["decision"] in {"live", "spoof", "uncertain"}
    assert {"confidence", "face_px", "brightness", "sharpness"} <= set(face["quality"])
    assert body["timings_ms"]["face"] > 0


def test_portrait_with_registered_depth(client: httpx.Client) -> None:
    bgr = cv2.imread(str(PORTRAIT), cv2.IMREAD_COLOR)
    h, w = bgr.shape[:2]
    depth = np.random.default_rng(0).integers(590, 610, (h, w), dtype=np.uint16)
    files = {
        "rgb": ("rgb.png", cv2.imencode(".png", bgr)[1].tobytes()),
        "depth": ("depth.png", cv2.imencode(".png", depth)[1].tobytes()),
    }
    r = client.post("/liveness", files=files, data={"depth_scale": "0.001", "max_faces": "1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["modalities_used"] == ["rgb", "depth"] and len(body["faces"]) == 1


def test_frame_without_a_face_is_200_with_no_face(client: httpx.Client) -> None:
    noise = np.random.default_rng(0).integers(60, 200, (240, 320, 3), dtype=np.uint8)
    r = client.post("/liveness", files={"rgb": ("n.png", cv2.imencode(".png", noise)[1].tobytes())})
    assert r.status_code == 200, r.text
    assert r.json()["faces"] == [] and r.json()["reasons"] == ["no_face"]
