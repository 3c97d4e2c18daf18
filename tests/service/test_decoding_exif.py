"""Phone photos and corrupt JPEGs against a real ``liveness serve`` (JSON logs on stderr).

- A real portrait stored sideways with an EXIF orientation tag (6 or 8, as phones write
  portraits) is turned upright by the API's decoder and its face is found; the same
  pixels without the tag are ``no_face`` (the detector does not find sideways faces, so
  the tag is what makes the difference).
- A JPEG with 2,000 zeroed bytes inside is refused with 422 ``undecodable-image`` naming
  the field, and libjpeg's complaint reaches the log as a JSON line, never as plain text.
- The API and the daemon's folder source decode the same file to the same pixels.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
#: a held-out congressional portrait (public domain, synth/assets/SOURCE.md)
PORTRAIT = ROOT / "synth" / "assets" / "holdout" / "015112.jpg"


def jpeg_tagged(rgb: np.ndarray, orientation: int | None) -> bytes:
    pil = pytest.importorskip("PIL.Image")
    buf = io.BytesIO()
    kwargs: dict[str, Any] = {"quality": 92}
    if orientation is not None:
        exif = pil.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
    pil.fromarray(np.ascontiguousarray(rgb)).save(buf, "JPEG", **kwargs)
    return buf.getvalue()


def png_tagged(bgr: np.ndarray, orientation: int) -> bytes:
    """A PNG with a hand-written eXIf chunk (little-endian TIFF, one Orientation entry)."""
    tiff = b"II" + struct.pack("<HI", 42, 8) + struct.pack("<H", 1)
    tiff += struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    chunk = struct.pack(">I", len(tiff)) + b"eXIf" + tiff
    chunk += struct.pack(">I", zlib.crc32(b"eXIf" + tiff))
    data = cv2.imencode(".png", bgr)[1].tobytes()
    return data[:33] + chunk + data[33:]


def upright_rgb() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(PORTRAIT), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def zeroed_inside(data: bytes, n: int = 2000) -> bytes:
    mid = len(data) // 2
    return data[:mid] + b"\x00" * n + data[mid + n :]


@pytest.fixture(scope="module")
def server(test_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    port = free_port()
    err_path = tmp_path_factory.mktemp("exif") / "serve.stderr"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LIVENESS_")},
        "LIVENESS_RGB_EXPERT": "false",
        "LIVENESS_INTRA_OP_THREADS": "1",
        "LIVENESS_LOG_JSON": "true",
    }
    with err_path.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--model", str(test_model_path),
             "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                deadline = time.monotonic() + 90
                while True:
                    try:
                        if client.get("/readyz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert proc.poll() is None, err_path.read_text()
                    assert time.monotonic() < deadline, "server never became ready"
                    time.sleep(0.1)
                yield client, err_path
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.mark.parametrize(
    ("orientation", "stored"),
    [(6, lambda a: np.rot90(a, 1)), (8, lambda a: np.rot90(a, -1))],
    ids=["tag6", "tag8"],
)
def test_a_sideways_phone_portrait_is_turned_upright_and_its_face_found(
    server: Any, orientation: int, stored: Any
) -> None:
    client, _ = server
    upright = upright_rgb()
    h, w = upright.shape[:2]
    sideways = stored(upright)
    assert sideways.shape[:2] == (w, h)

    untagged = client.post("/liveness", files={"rgb": ("p.jpg", jpeg_tagged(sideways, None))})
    assert untagged.status_code == 200, untagged.text
    assert untagged.json()["faces"] == [] and untagged.json()["reasons"] == ["no_face"]

    tagged = client.post("/liveness", files={"rgb": ("p.jpg", jpeg_tagged(sideways, orientation))})
    assert tagged.status_code == 200, tagged.text
    (face,) = tagged.json()["faces"]
    x1, y1, x2, y2 = face["box"]
    assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h  # in the upright frame's coordinates
    (lex, ley), (rex, rey), (nx, ny), *_ = face["landmarks"]
    assert lex < nx < rex and max(ley, rey) < ny  # eyes level above the nose: upright


def test_a_tagged_png_is_turned_upright_too(server: Any) -> None:
    client, _ = server
    bgr = cv2.cvtColor(np.ascontiguousarray(np.rot90(upright_rgb(), 1)), cv2.COLOR_RGB2BGR)
    r = client.post("/liveness", files={"rgb": ("p.png", png_tagged(bgr, 6))})
    assert r.status_code == 200, r.text
    assert len(r.json()["faces"]) == 1


def test_a_corrupt_jpeg_is_422_and_the_log_stays_json(server: Any) -> None:
    client, err_path = server
    data = PORTRAIT.read_bytes()
    r = client.post("/liveness", files={"rgb": ("p.jpg", zeroed_inside(data))})
    assert r.status_code == 422, r.text
    body = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert body["type"].endswith("/undecodable-image") and body["field"] == "rgb"
    assert "corrupt JPEG data" in body["detail"]
    ir = cv2.imencode(".jpg", np.full((240, 320), 90, np.uint8))[1].tobytes()
    r = client.post("/liveness", files={"ir": ("i.jpg", zeroed_inside(ir, 200))})
    assert r.status_code == 422 and r.json()["field"] == "ir", r.text
    # the intact file is analysed as before
    assert client.post("/liveness", files={"rgb": ("p.jpg", data)}).status_code == 200

    time.sleep(0.3)  # let the server's log lines land
    lines = [line for line in err_path.read_text().splitlines() if line.strip()]
    not_json = []
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            not_json.append(line)
    assert not not_json, not_json[:5]
    codec = [r for r in records if r.get("logger") == "sensors.imagecodec"]
    assert codec and "Corrupt JPEG data" in codec[0]["msg"] and codec[0].get("request_id")


def test_the_api_and_the_folder_source_decode_alike(tmp_path: Path) -> None:
    from sensors.config import FolderConfig, create_source
    from service.api.decoding import build_bundle

    data = jpeg_tagged(np.rot90(upright_rgb(), 1), 6)
    (tmp_path / "0001_rgb.jpg").write_bytes(data)
    with create_source(FolderConfig(path=tmp_path)) as source:
        (from_folder,) = list(source)
    from_api = build_bundle({"rgb": data}, depth_scale=0.001, max_pixels=1 << 22)
    assert from_folder.rgb is not None and from_api.rgb is not None
    assert np.array_equal(from_folder.rgb, from_api.rgb)
    assert from_api.rgb.shape == upright_rgb().shape
