"""The hostile corpus against a real ``liveness serve`` process.

Each crafted input must be answered with a 4xx problem that names the field, never a
5xx or a traceback; the server must stay alive after each, and its peak memory must not
show a decoded bomb. Slow bodies and disconnects are in ``test_slow_clients.py``; the
schema-driven cases in ``test_hostile_schema.py``; plain bad input (undecodable bytes,
bad option values, 8-bit depth, ...) in ``test_api.py``.
"""

from __future__ import annotations

import base64
import io
import os
import pickle
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from tests.ports import free_port

MAX_PIXELS = 512 * 512
MAX_UPLOAD = 2 * 1024 * 1024
SIZE = 96
#: A 16384×16384 image decodes to 256 MiB at 8 bits: its absence from the server's peak
#: memory shows that the bombs were refused from their headers.
BOMB_SIDE = 16384


def png(arr: np.ndarray) -> bytes:
    return cv2.imencode(".png", arr)[1].tobytes()


def jpeg(arr: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", arr)[1].tobytes()


def npy(arr: np.ndarray, allow_pickle: bool = False) -> bytes:
    fh = io.BytesIO()
    np.save(fh, arr, allow_pickle=allow_pickle)
    return fh.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(side: int) -> bytes:
    """A valid 8-bit grey PNG of side × side zeros: a few hundred KB that decode to side²."""
    co = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte + pixels
    idat = b"".join(co.compress(row) for _ in range(side)) + co.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    chunks = _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header claims ``width`` × ``height``."""
    data = bytearray(jpeg(np.full((16, 16, 3), 128, np.uint8)))
    i = 2
    while data[i + 1] not in (0xC0, 0xC1, 0xC2):
        i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
    data[i + 5 : i + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def npy_header_only(shape: tuple[int, ...], dtype: str = "<u2") -> bytes:
    header = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape}, }}"
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + b"\x00" * 64


class _TouchOnUnpickle:
    """Unpickling this creates ``path``: proof that a payload was executed."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (Path.touch, (Path(self.path),))


def images(size: int = SIZE) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "rgb": rng.integers(60, 200, (size, size, 3), dtype=np.uint8),
        "depth": rng.integers(480, 540, (size, size), dtype=np.uint16),
        "ir": rng.integers(40, 200, (size, size), dtype=np.uint8),
    }


@dataclass
class Hostile:
    name: str
    status: int
    field: str
    kind: str | None = None
    files: dict[str, Any] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict)
    json_body: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def corpus(marker: Path) -> list[Hostile]:
    img = images()
    ok_png = png(img["rgb"])
    jpg = jpeg(img["rgb"])
    nan_ir = np.full((SIZE, SIZE), np.nan, np.float32)
    pickled = np.empty(1, dtype=object)
    pickled[0] = _TouchOnUnpickle(str(marker))
    structured = np.zeros((4, 4), dtype=[("a", "O"), ("b", "<u2")])
    polyglot_gif_jpeg = b"GIF89a" + jpg  # "GIFAR"-style: a GIF header in front of a JPEG
    bomb = png_bomb(BOMB_SIDE)
    assert len(bomb) < MAX_UPLOAD // 2
    many = [("cropped", (None, "true"))] * 40
    return [
        # decompression bombs
        Hostile("png bomb", 413, "ir", "image-too-large", files={"ir": ("b.png", bomb)}),
        Hostile("rgb png bomb", 413, "rgb", "image-too-large", files={"rgb": ("b.png", bomb)}),
        Hostile(
            "jpeg declaring 65500²",
            413,
            "rgb",
            "image-too-large",
            files={"rgb": ("b.jpg", jpeg_declaring(65500, 65500))},
        ),
        Hostile(
            "npy declaring 2^30 rows",
            413,
            "depth",
            "image-too-large",
            files={"depth": ("d.npy", npy_header_only((1 << 30, 1 << 30)))},
        ),
        Hostile(
            "npy with 10^9 channels, 64 bytes",
            422,
            "ir",
            "truncated-image",
            files={"ir": ("i.npy", npy_header_only((8, 8, 1_000_000_000), "|u1"))},
        ),
        Hostile(
            "npy whose size overflows int64",
            422,
            "ir",
            files={"ir": ("i.npy", npy_header_only((4, 4, 1 << 62, 8), "|u1"))},
        ),
        # truncated files
        Hostile(
            "truncated png",
            422,
            "rgb",
            "truncated-image",
            files={"rgb": ("a.png", ok_png[: len(ok_png) // 3])},
        ),
        Hostile("png header only", 422, "rgb", files={"rgb": ("a.png", ok_png[:33])}),
        Hostile(
            "truncated npy",
            422,
            "depth",
            "truncated-image",
            files={"depth": ("d.npy", npy(img["depth"])[:-500])},
        ),
        Hostile("npy magic only", 422, "depth", files={"depth": ("d.npy", b"\x93NUMPY")}),
        # polyglots and impostors
        Hostile(
            "png signature, jpeg body",
            422,
            "rgb",
            "undecodable-image",
            files={"rgb": ("a.png", ok_png[:8] + jpg)},
        ),
        Hostile(
            "jpeg with a zip appended",
            422,
            "rgb",
            files={"rgb": ("a.jpg", jpg + b"PK\x03\x04" + b"\x00" * 200)},
        ),
        Hostile(
            "png with a script after IEND",
            422,
            "rgb",
            files={"rgb": ("a.png", ok_png + b"<script>alert(1)</script>" * 4)},
        ),
        Hostile(
            "gif header before a jpeg",
            422,
            "rgb",
            "unsupported-format",
            files={"rgb": ("a.gif", polyglot_gif_jpeg)},
        ),
        Hostile(
            "html as an image",
            422,
            "ir",
            "undecodable-image",
            files={"ir": ("i.png", b"<!DOCTYPE html><html><body>hi</body></html>")},
        ),
        # NaN and pickles in .npy
        Hostile(
            "NaN float32 ir",
            422,
            "ir",
            "unsupported-dtype",
            files={"ir": ("i.npy", npy(nan_ir))},
        ),
        Hostile(
            "NaN float64 depth",
            422,
            "depth",
            "unsupported-dtype",
            files={"depth": ("d.npy", npy(nan_ir.astype(np.float64)))},
        ),
        Hostile(
            "pickled object npy",
            422,
            "rgb",
            "unsupported-dtype",
            files={"rgb": ("a.npy", npy(pickled, allow_pickle=True))},
        ),
        Hostile(
            "structured dtype with an object field",
            422,
            "depth",
            "unsupported-dtype",
            files={"depth": ("d.npy", npy(structured, allow_pickle=True))},
        ),
        # mismatched modality sizes
        Hostile(
            "ir smaller than rgb",
            422,
            "ir",
            "size-mismatch",
            files={"rgb": ("a.png", ok_png), "ir": ("i.png", png(images(SIZE - 16)["ir"]))},
        ),
        Hostile(
            "depth transposed",
            422,
            "depth",
            "size-mismatch",
            files={
                "rgb": ("a.png", png(img["rgb"][:, : SIZE - 20])),
                "depth": ("d.png", png(img["depth"][: SIZE - 20, :])),
            },
        ),
        # huge and repeated form fields
        Hostile(
            "100 KB depth_scale",
            413,
            "depth_scale",
            "payload-too-large",
            files={"rgb": ("a.png", ok_png), "depth_scale": (None, "1" * 100_000)},
        ),
        Hostile(
            "100 KB operating_point",
            413,
            "operating_point",
            "payload-too-large",
            files={"rgb": ("a.png", ok_png), "operating_point": (None, "x" * 100_000)},
        ),
        Hostile(
            "a 5000-digit max_faces",
            422,
            "max_faces",
            files={"rgb": ("a.png", ok_png), "max_faces": (None, "9" * 5000)},
        ),
        Hostile(
            "40 option fields",
            422,
            "body",
            "malformed-body",
            files=[("rgb", ("a.png", ok_png)), *many],  # type: ignore[arg-type]
        ),
        Hostile(
            "rgb sent twice",
            422,
            "rgb",
            files=[("rgb", ("a.png", ok_png)), ("rgb", ("b.png", ok_png))],  # type: ignore[arg-type]
        ),
        Hostile(
            "multipart without boundary",
            422,
            "body",
            "malformed-body",
            content=b"--x\r\n",
            headers={"content-type": "multipart/form-data"},
        ),
        Hostile(
            "1 MB operating_point in JSON",
            422,
            "operating_point",
            json_body={
                "rgb": base64.b64encode(ok_png).decode(),
                "cropped": True,
                "operating_point": "x" * 1_000_000,
            },
        ),
        Hostile(
            "10 KB operating_point",
            422,
            "operating_point",
            "unknown-operating-point",
            files={"rgb": ("a.png", ok_png), "operating_point": (None, "y" * 10_000)},
        ),
        Hostile(
            "a 100 KB unknown JSON key",
            422,
            "k" * 64,
            "unknown-field",
            json_body={"rgb": "aGk=", "k" * 100_000: 1},
        ),
        Hostile(
            "JSON nested 100000 deep",
            422,
            "body",
            content=b'{"rgb": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            headers={"content-type": "application/json"},
        ),
        Hostile(
            "JSON with a NaN option",
            422,
            "depth_scale",
            content=b'{"rgb": "aGk=", "depth_scale": NaN}',
            headers={"content-type": "application/json"},
        ),
    ]


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def server(test_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("hostile") / "serve.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LIVENESS_")},
        "LIVENESS_MAX_IMAGE_PIXELS": str(MAX_PIXELS),
        "LIVENESS_MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
        "LIVENESS_RGB_EXPERT": "false",
        "LIVENESS_INTRA_OP_THREADS": "1",
    }
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--model", str(test_model_path),
             "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if c.get("/readyz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert proc.poll() is None, log_path.read_text()
                    assert time.monotonic() < deadline, "server never became ready"
                    time.sleep(0.1)
                yield proc, c, log_path
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_hostile_corpus_is_refused_by_field_and_the_server_survives(
    server: Any, tmp_path: Path
) -> None:
    proc, client, log_path = server
    img = images()
    good = {"rgb": ("a.png", png(img["rgb"])), "ir": ("i.png", png(img["ir"]))}
    assert client.post("/liveness", files=good, data={"cropped": "true"}).status_code == 200
    baseline = _peak_rss_mib(proc.pid)
    marker = tmp_path / "unpickled"
    failures = []
    for case in corpus(marker):
        r = client.post(
            "/liveness",
            files=case.files or None,
            data=case.data or None,
            json=case.json_body,
            content=case.content,
            headers=case.headers,
        )
        try:
            assert r.status_code == case.status, r.text[:300]
            assert r.headers["content-type"].startswith("application/problem+json")
            body = r.json()
            assert body["field"] == case.field, body
            if case.kind is not None:
                assert body["type"].endswith("/" + case.kind), body
            assert len(r.content) < 4096, "the answer echoes the input"
            assert "Traceback" not in r.text
        except AssertionError as exc:
            failures.append(f"{case.name}: {exc}")
        assert client.get("/healthz").status_code == 200, f"server down after {case.name}"
    assert not failures, "\n".join(failures)
    assert not marker.exists(), "a pickled .npy was unpickled"
    # the server still analyses, and never decoded a bomb (256 MiB each)
    assert client.post("/liveness", files=good, data={"cropped": "true"}).status_code == 200
    grew = _peak_rss_mib(proc.pid) - baseline
    assert grew < 128, f"peak memory grew by {grew:.0f} MiB during the corpus"
    log = log_path.read_text()
    assert "Traceback" not in log and '"level": "ERROR"' not in log, log[-3000:]
    metrics = client.get("/metrics").text
    assert 'status="500"' not in metrics


def test_a_pickled_npy_payload_really_runs_when_unpickled(tmp_path: Path) -> None:
    """The corpus' pickle would have left its mark had the server unpickled it."""
    marker = tmp_path / "unpickled"
    arr = np.empty(1, dtype=object)
    arr[0] = _TouchOnUnpickle(str(marker))
    np.load(io.BytesIO(npy(arr, allow_pickle=True)), allow_pickle=True)
    assert marker.exists()
    assert pickle.dumps(_TouchOnUnpickle("x"))  # stays picklable


def test_the_bomb_is_a_valid_image_that_would_decode_large() -> None:
    side = 2048  # the same construction, small enough to decode here
    arr = cv2.imdecode(np.frombuffer(png_bomb(side), np.uint8), cv2.IMREAD_UNCHANGED)
    assert arr is not None and arr.shape == (side, side)
    assert len(png_bomb(BOMB_SIDE)) < BOMB_SIDE * BOMB_SIDE / 500  # a real bomb: ratio > 500
