"""The REST API through a real uvicorn server and an HTTP client (cropped requests).

Every modality subset succeeds; every kind of bad input gets the right 4xx with an RFC
7807 problem body naming the field; health, readiness, metrics and the model card work.
"""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
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

from models import DEFAULT_MODEL_PATH
from models.spec import all_subsets, subset_name
from service.api import create_app
from service.engine import InferenceEngine
from service.pipeline import LivenessPipeline, build_face_stage
from service.settings import Settings

SIZE = 96
MAX_UPLOAD = 512 * 1024


def png(arr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", arr)
    assert ok
    return buf.tobytes()


def npy(arr: np.ndarray) -> bytes:
    fh = io.BytesIO()
    np.save(fh, arr)
    return fh.getvalue()


def face_images(level: int = 180, size: int = SIZE) -> dict[str, np.ndarray]:
    """A textured aligned 'crop' per modality (RGB here in OpenCV's BGR, as files are)."""
    rng = np.random.default_rng(level)
    return {
        "rgb": np.clip(rng.normal(level, 12, (size, size, 3)), 0, 255).astype(np.uint8),
        "depth": rng.integers(480, 540, (size, size), dtype=np.uint16),
        "ir": rng.integers(40, 200, (size, size), dtype=np.uint8),
    }


def files_for(subset: tuple[str, ...], level: int = 180) -> dict[str, tuple[str, bytes, str]]:
    imgs = face_images(level)
    return {m: (f"{m}.png", png(imgs[m]), "image/png") for m in subset}


def problem(r: httpx.Response, status: int, field: str | None, kind: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert {"type", "title", "status", "detail", "field"} <= set(body)
    assert body["status"] == status
    assert body["field"] == field, body
    if kind is not None:
        assert body["type"].endswith("/" + kind), body
    assert "Traceback" not in r.text
    return body


def wait_ready(client: httpx.Client, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "server never became ready"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def engine(test_model_path: Path) -> InferenceEngine:
    return InferenceEngine.load(test_model_path, providers="cpu", intra_op_threads=1)


@pytest.fixture(scope="module")
def client(test_model_path: Path, live_server: Any) -> Iterator[httpx.Client]:
    settings = Settings(model_path=test_model_path, max_upload_bytes=MAX_UPLOAD, log_json=True)
    with live_server(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as c:
        wait_ready(c)
        yield c


# -- success -----------------------------------------------------------------------------
@pytest.mark.parametrize("subset", all_subsets(), ids=subset_name)
def test_every_modality_subset_is_scored(client: httpx.Client, subset: tuple[str, ...]) -> None:
    r = client.post("/liveness", files=files_for(subset), data={"cropped": "true"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["modalities_received"] == list(subset)
    assert body["modalities_used"] == list(subset)
    assert body["model"]["name"] == "flexlive-test" and len(body["model"]["sha256"]) == 64
    assert body["request_id"] == r.headers["x-request-id"]
    assert body["reasons"] == []
    (face,) = body["faces"]
    assert face["box"] == [0.0, 0.0, SIZE, SIZE]
    assert len(face["landmarks"]) == 5
    assert 0.0 <= face["score"] <= 1.0
    assert face["decision"] in {"live", "spoof", "uncertain"}
    assert set(body["timings_ms"]) == {"decode", "face", "inference", "rgb_expert", "total"}


def test_decision_follows_the_score_and_operating_point(client: httpx.Client) -> None:
    subset = ("rgb", "depth", "ir")
    live = client.post("/liveness", files=files_for(subset, 190), data={"cropped": "true"}).json()
    spoof = client.post("/liveness", files=files_for(subset, 55), data={"cropped": "true"}).json()
    assert live["faces"][0]["decision"] == "live" and live["faces"][0]["score"] > 0.55
    assert spoof["faces"][0]["decision"] == "spoof" and spoof["faces"][0]["score"] < 0.45
    assert live["operating_point"] == {
        "name": "eer",
        "threshold": 0.5,
        "uncertain_margin": 0.05,
        "spoof_below": 0.45,
    }
    strict = client.post(
        "/liveness",
        files=files_for(("rgb",), 150),
        data={"cropped": "true", "operating_point": "apcer1"},
    ).json()
    assert strict["operating_point"]["threshold"] == 0.8
    assert strict["faces"][0]["score"] < 0.75 and strict["faces"][0]["decision"] == "spoof"


def test_low_quality_and_broken_modalities_are_uncertain_with_reasons(
    client: httpx.Client,
) -> None:
    imgs = face_images(190, size=24)  # smaller than the minimum face size
    r = client.post("/liveness", files={"rgb": ("a.png", png(imgs["rgb"]))}, data={"cropped": "1"})
    face = r.json()["faces"][0]
    assert face["decision"] == "uncertain" and "face_too_small" in face["reasons"]

    files = files_for(("rgb", "depth"), 190)
    files["depth"] = ("d.png", png(np.zeros((SIZE, SIZE), np.uint16)), "image/png")
    body = client.post("/liveness", files=files, data={"cropped": "true"}).json()
    assert body["modalities_received"] == ["rgb", "depth"]
    assert body["modalities_used"] == ["rgb"]
    assert "depth_unusable" in body["reasons"]


def test_npy_uploads_and_16_bit_ir(client: httpx.Client) -> None:
    imgs = face_images(190)
    files = {
        "rgb": ("rgb.npy", npy(imgs["rgb"][:, :, ::-1].copy())),  # .npy RGB is RGB order
        "depth": ("depth.npy", npy(imgs["depth"])),
        "ir": ("ir.png", png(imgs["ir"].astype(np.uint16) * 257)),
    }
    r = client.post("/liveness", files=files, data={"cropped": "true", "depth_scale": "0.001"})
    assert r.status_code == 200, r.text
    as_png = client.post("/liveness", files=files_for(("rgb", "depth", "ir"), 190),
                         data={"cropped": "true"})  # fmt: skip
    # Same pixels; only the 96→64 resize rounds uint16 IR differently from uint8.
    score = r.json()["faces"][0]["score"]
    assert score == pytest.approx(as_png.json()["faces"][0]["score"], abs=1e-3)


def test_rgb_leaves_decoding_in_rgb_order() -> None:
    from service.api.decoding import build_bundle

    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 200  # red
    bgr_png = png(rgb[:, :, ::-1].copy())  # files hold BGR as OpenCV writes them
    for data in (bgr_png, npy(rgb)):
        bundle = build_bundle({"rgb": data}, depth_scale=0.001, max_pixels=1 << 20)
        assert bundle.rgb is not None
        assert bundle.rgb[0, 0].tolist() == [200, 0, 0]


def test_json_body_with_base64_images(client: httpx.Client) -> None:
    imgs = face_images(190)
    body = {
        "rgb": base64.b64encode(png(imgs["rgb"])).decode(),
        "depth": "data:image/png;base64," + base64.b64encode(png(imgs["depth"])).decode(),
        "cropped": True,
    }
    r = client.post("/liveness", json=body, headers={"X-Request-ID": "client-42"})
    assert r.status_code == 200, r.text
    assert r.json()["modalities_used"] == ["rgb", "depth"]
    assert r.headers["x-request-id"] == "client-42" == r.json()["request_id"]
    problem(client.post("/liveness", json={"rgb": "@@not base64@@"}), 422, "rgb")
    problem(client.post("/liveness", json={"rgbb": "AAAA"}), 422, "rgbb", "unknown-field")
    problem(client.post("/liveness", json={"cropped": True}), 422, "body", "empty-request")
    problem(
        client.post("/liveness", json={"rgb": body["rgb"], "depth_scale": -1}), 422, "depth_scale"
    )


# -- bad input ----------------------------------------------------------------------------
def test_undecodable_bytes(client: httpx.Client) -> None:
    r = client.post("/liveness", files={"rgb": ("x.png", b"\x00\x01garbage" * 10)})
    body = problem(r, 422, "rgb", "undecodable-image")
    assert "not a PNG, JPEG" in body["detail"]
    corrupt = bytearray(png(face_images()["ir"]))
    corrupt[60:200] = b"\x00" * 140  # intact header and end, broken data
    problem(client.post("/liveness", files={"ir": ("i.png", bytes(corrupt))}), 422, "ir")


def test_truncated_png_and_jpeg(client: httpx.Client) -> None:
    data = png(face_images()["depth"])
    r = client.post("/liveness", files={"depth": ("d.png", data[: len(data) // 2])})
    problem(r, 422, "depth", "truncated-image")
    jpg = cv2.imencode(".jpg", face_images()["rgb"])[1].tobytes()
    r = client.post("/liveness", files={"rgb": ("a.jpg", jpg[: len(jpg) - 100])})
    problem(r, 422, "rgb", "truncated-image")


def test_mismatched_sizes_are_refused_not_resized(client: httpx.Client) -> None:
    files = files_for(("rgb", "depth"))
    files["depth"] = ("d.png", png(face_images(size=SIZE - 10)["depth"]), "image/png")
    body = problem(client.post("/liveness", files=files), 422, "depth", "size-mismatch")
    assert "86×86" in body["detail"] and "96×96" in body["detail"]


def test_unknown_field_only(client: httpx.Client) -> None:
    r = client.post("/liveness", files={"thermal": ("t.png", png(face_images()["ir"]))})
    body = problem(r, 422, "thermal", "unknown-field")
    assert "send at least one of rgb, depth, ir" in body["detail"]


def test_empty_request(client: httpx.Client) -> None:
    problem(client.post("/liveness"), 422, "body", "empty-request")
    # multipart with options but no image
    r = client.post("/liveness", files={"cropped": (None, "true")})
    body = problem(r, 422, "body", "empty-request")
    assert "send at least one of rgb, depth, ir" in body["detail"]
    problem(client.post("/liveness", files={"rgb": ("a.png", b"")}), 422, "rgb", "empty-file")


def test_oversized_upload_is_413(client: httpx.Client) -> None:
    big = b"\x89PNG" + bytes(MAX_UPLOAD + 1000)
    problem(client.post("/liveness", files={"rgb": ("a.png", big)}), 413, "body")

    def chunks() -> Iterator[bytes]:  # no Content-Length: cut off while reading
        for _ in range(40):
            yield b"x" * 32768

    r = client.post("/liveness", content=chunks(), headers={"content-type": "application/json"})
    problem(r, 413, "body", "payload-too-large")
    assert client.get("/healthz").status_code == 200


def test_image_over_pixel_limit_is_413_before_decoding(test_model_path: Path) -> None:
    # A tiny PNG header claiming 100k × 100k pixels is refused from the header alone.
    header = bytearray(png(np.zeros((8, 8), np.uint8)))
    header[16:24] = (100_000).to_bytes(4, "big") * 2
    from service.api.decoding import decode_array
    from service.errors import PayloadTooLargeError

    with pytest.raises(PayloadTooLargeError, match="10000000000 pixels"):
        decode_array("ir", bytes(header), max_pixels=4096 * 4096)


def test_wrong_dtype(client: httpx.Client) -> None:
    imgs = face_images()
    r = client.post("/liveness", files={"depth": ("d.png", png(imgs["ir"]))})  # 8-bit depth
    body = problem(r, 422, "depth", "unsupported-dtype")
    assert "16-bit" in body["detail"]
    r = client.post("/liveness", files={"ir": ("i.npy", npy(imgs["ir"].astype(np.float32)))})
    problem(r, 422, "ir", "unsupported-dtype")
    r = client.post("/liveness", files={"rgb": ("a.png", png(imgs["ir"]))})  # grey as rgb
    problem(r, 422, "rgb", "bad-shape")
    r = client.post("/liveness", files={"rgb": ("a.npy", npy(np.array([{"a": 1}], dtype=object)))})
    problem(r, 422, "rgb", "unsupported-dtype")


def test_bad_form_values(client: httpx.Client) -> None:
    files = files_for(("rgb", "depth"))
    for value in ("abc", "-0.001", "0", "nan", "inf"):
        r = client.post("/liveness", files=files, data={"depth_scale": value, "cropped": "true"})
        problem(r, 422, "depth_scale")
    problem(client.post("/liveness", files=files, data={"cropped": "maybe"}), 422, "cropped")
    problem(client.post("/liveness", files=files, data={"max_faces": "0"}), 422, "max_faces")
    problem(client.post("/liveness", files=files, data={"max_faces": "x"}), 422, "max_faces")
    r = client.post("/liveness", files=files, data={"cropped": "true", "operating_point": "x"})
    body = problem(r, 422, "operating_point", "unknown-operating-point")
    assert "apcer1" in body["detail"] and "eer" in body["detail"]
    r = client.post("/liveness", content=b"rgb=1", headers={"content-type": "text/plain"})
    problem(r, 415, "body", "unsupported-media-type")


def test_unknown_route_and_method_are_problems(client: httpx.Client) -> None:
    problem(client.get("/nope"), 404, None)
    problem(client.get("/liveness"), 405, None)


# -- operational endpoints ----------------------------------------------------------------
def test_health_readiness_model_card_and_docs(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["ready"] is True and ready["model"]["name"] == "flexlive-test"
    assert ready["full_frame"] is True
    card = client.get("/v1/models").json()
    assert card["operating_points"] == {"eer": 0.5, "apcer1": 0.8}
    assert card["default_operating_point"] == "eer" and card["input_size"] == 64
    assert len(card["supported_subsets"]) == 7
    assert {"training_data", "evaluation", "sha256", "backbone", "fusion"} <= set(card)
    docs = client.get("/docs")
    assert docs.status_code == 200
    # The docs page must work offline: its assets come from this server, not a CDN.
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', docs.text)
    assert assets and all(a.startswith("/") for a in assets), assets
    for asset in assets:
        got = client.get(asset)
        assert got.status_code == 200 and len(got.content) > 10_000, asset
    spec = client.get("/openapi.json").json()
    content = spec["paths"]["/liveness"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(content)


def _samples(text: str) -> dict[tuple[str, frozenset], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def test_metrics_move(client: httpx.Client) -> None:
    before = _samples(client.get("/metrics").text)
    client.post("/liveness", files=files_for(("rgb", "ir"), 190), data={"cropped": "true"})
    client.post("/liveness", files={"rgb": ("x.png", b"junk")})
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    after = _samples(r.text)
    assert all(name.startswith("liveness_") for name, _ in after)

    def delta(name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return after.get(key, 0.0) - before.get(key, 0.0)

    ok = {"endpoint": "/liveness", "method": "POST"}
    assert delta("liveness_requests_total", **ok, status="200") == 1
    assert delta("liveness_requests_total", **ok, status="422") == 1
    assert delta("liveness_decisions_total", decision="live") == 1
    assert delta("liveness_modality_subsets_total", received="rgb+ir", used="rgb+ir") == 1
    assert delta("liveness_stage_duration_seconds_count", stage="inference") == 1
    assert delta("liveness_faces_per_request_count") == 1
    assert after[("liveness_ready", frozenset())] == 1
    infos = [k for k in after if k[0] == "liveness_model_info"]
    assert len(infos) == 1 and ("name", "flexlive-test") in infos[0][1]
    assert ("liveness_in_flight_requests", frozenset()) in after


# -- readiness and overload ------------------------------------------------------------------
class _GatedPipeline(LivenessPipeline):
    """A real pipeline whose warm-up and analyses wait for the test to open a gate."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.warm_gate = threading.Event()
        self.analyze_gate = threading.Event()
        self.analyze_gate.set()
        self.entered = threading.Semaphore(0)

    def analyze(self, *args: Any, **kwargs: Any) -> Any:
        self.entered.release()
        self.analyze_gate.wait(10)
        return super().analyze(*args, **kwargs)


def test_readyz_is_503_until_warm_and_overload_is_503_with_retry_after(
    engine: InferenceEngine, live_server: Any
) -> None:
    settings = Settings(
        model_path=Path(engine.info.path),
        max_concurrent_requests=1,
        max_queue=1,
        queue_timeout_s=0.5,
        retry_after_s=3,
    )
    stage = build_face_stage(settings.face, engine.spec.input_size)
    pipeline = _GatedPipeline(engine, stage, settings)
    original_warm = engine.warmup
    engine.warmed = False

    def gated_warmup(runs: int = 2) -> float:
        pipeline.warm_gate.wait(10)
        return original_warm(runs=1)

    engine.warmup = gated_warmup  # type: ignore[method-assign]
    try:
        with (
            live_server(create_app(settings, pipeline=pipeline)) as url,
            httpx.Client(base_url=url, timeout=30) as c,
        ):
            r = c.get("/readyz")
            assert r.status_code == 503 and r.json()["ready"] is False
            assert r.headers["retry-after"] == "3"  # the setting, not a hard-coded 1
            assert c.get("/healthz").status_code == 200
            r = c.post("/liveness", files=files_for(("rgb",)), data={"cropped": "true"})
            problem(r, 503, None, "not-ready")
            pipeline.warm_gate.set()
            wait_ready(c)

            pipeline.analyze_gate.clear()
            results: list[httpx.Response] = []

            def post() -> None:
                with httpx.Client(base_url=url, timeout=30) as c2:
                    results.append(
                        c2.post("/liveness", files=files_for(("rgb",)), data={"cropped": "true"})
                    )

            first = threading.Thread(target=post)
            first.start()
            assert pipeline.entered.acquire(timeout=10)  # holds the only slot
            second = threading.Thread(target=post)  # waits in the queue, then times out
            second.start()
            deadline = time.monotonic() + 10
            while "liveness_queued_requests 1.0" not in c.get("/metrics").text:
                assert time.monotonic() < deadline, "the second request never queued"
                time.sleep(0.01)
            r = c.post("/liveness", files=files_for(("rgb",)), data={"cropped": "true"})
            body = problem(r, 503, None, "overloaded")  # queue full: refused at once
            assert r.headers["retry-after"] == "3" and "waiting" in body["detail"]
            second.join(10)
            pipeline.analyze_gate.set()
            first.join(10)
            codes = sorted(x.status_code for x in results)
            assert codes == [200, 503], [x.text for x in results]
    finally:
        engine.warmup = original_warm  # type: ignore[method-assign]


class _BrokenPipeline(LivenessPipeline):
    def analyze(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals: /etc/passwd")


def test_unexpected_errors_are_a_generic_500_problem(
    engine: InferenceEngine, live_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(model_path=Path(engine.info.path))
    pipeline = _BrokenPipeline(engine, build_face_stage(settings.face, 64), settings)
    with (
        live_server(create_app(settings, pipeline=pipeline)) as url,
        httpx.Client(base_url=url, timeout=30) as c,
    ):
        wait_ready(c)
        with caplog.at_level("ERROR"):
            r = c.post("/liveness", files=files_for(("rgb",)), data={"cropped": "true"})
        body = problem(r, 500, None, "internal-error")
        assert "secret" not in r.text and body["request_id"] == r.headers["x-request-id"]
        assert any("secret internals" in (rec.exc_text or "") or rec.exc_info for rec in
                   caplog.records)  # fmt: skip
        assert c.get("/healthz").status_code == 200


def test_json_log_lines_carry_the_request_id_and_no_image_bytes() -> None:
    import json
    import logging

    from service.logging_setup import JsonFormatter, RequestIdFilter, request_id_var

    record = logging.LogRecord("t", logging.INFO, __file__, 1, "analysis", None, None)
    token = request_id_var.set("rid-1")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    record.faces = 1
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "rid-1" and line["msg"] == "analysis" and line["faces"] == 1


def test_bundled_model_serves_every_subset(live_server: Any) -> None:
    settings = Settings(model_path=DEFAULT_MODEL_PATH)
    with live_server(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as c:
        wait_ready(c)
        card = c.get("/v1/models").json()
        for subset in card["supported_subsets"]:
            mods = tuple(subset.split("+"))
            r = c.post("/liveness", files=files_for(mods), data={"cropped": "true"})
            assert r.status_code == 200, r.text
            (face,) = r.json()["faces"]
            assert 0.0 <= face["score"] <= 1.0 and r.json()["model"]["sha256"] == card["sha256"]
            # the decision used the threshold calibrated for this subset, as the card lists
            op = r.json()["operating_point"]
            assert op["threshold"] == pytest.approx(
                card["subset_operating_points"][subset][op["name"]]
            )
        assert set(card["subset_operating_points"]) == set(card["supported_subsets"])


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (Debian: prometheus)"
)
def test_metrics_pass_promtool_lint(client: httpx.Client) -> None:
    text = client.get("/metrics").text
    done = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
