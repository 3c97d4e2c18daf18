"""Several models by name and hot reload, through a real uvicorn server and real ONNX files.

Two models answer by name (``LIVENESS_MODELS``) with their own operating points and
identity; unknown names are 404 (``/v1/models/{name}``) or 422 (``POST /liveness``)
problems naming the known ones. A model file replaced on disk is swapped in while
concurrent requests all succeed; a corrupt replacement is refused, reported in
``/v1/models`` and the metrics, and the old model keeps serving.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.api import create_app
from service.engine import InferenceEngine, ModelLoadError
from service.model_registry import ModelRegistry, UnknownModelError
from service.settings import Settings, SettingsError, load_settings

SIZE = 96


def png(arr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", arr)
    assert ok
    return buf.tobytes()


def crop_files(level: int = 180) -> dict[str, tuple[str, bytes, str]]:
    rng = np.random.default_rng(level)
    rgb = np.clip(rng.normal(level, 12, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    ir = rng.integers(40, 200, (SIZE, SIZE), dtype=np.uint8)
    return {"rgb": ("rgb.png", png(rgb), "image/png"), "ir": ("ir.png", png(ir), "image/png")}


def problem(r: httpx.Response, status: int, field: str, kind: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["field"] == field and body["type"].endswith("/" + kind), body
    assert "Traceback" not in r.text
    return body


def metric(client: httpx.Client, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return 0.0


def publish(src: Path, dst: Path) -> None:
    """Replace a served model file the safe way: write beside it, then rename over it."""
    tmp = dst.with_suffix(".tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


@pytest.fixture(scope="module")
def models_dir(
    tmp_path_factory: pytest.TempPathFactory, build_model: Any, make_spec: Any
) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("served")
    return {
        "v1": build_model(d / "v1.onnx", spec=make_spec(version="1.0.0")),
        "v2": build_model(d / "v2.onnx", spec=make_spec(version="2.0.0")),
        "v3": build_model(d / "v3.onnx", spec=make_spec(version="3.0.0")),
        "strict": build_model(
            d / "strict.onnx",
            spec=make_spec(
                name="flexlive-strict",
                version="7.1.0",
                operating_points={"eer": 0.7, "apcer1": 0.9},
            ),
        ),
        # loads, but lacks the operating point the deployment pins (LIVENESS_OPERATING_POINT)
        "no_apcer1": build_model(
            d / "no_apcer1.onnx",
            spec=make_spec(version="9.0.0", operating_points={"eer": 0.5}),
        ),
    }


@pytest.fixture
def serve(live_server: Any) -> Callable[..., Any]:
    @contextmanager
    def run(**overrides: Any) -> Iterator[httpx.Client]:
        settings = Settings(rgb_expert=False, intra_op_threads=1, **overrides)
        with live_server(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as c:
            deadline = time.monotonic() + 30
            while c.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "never ready"
                time.sleep(0.02)
            yield c

    return run


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


# -- several models by name ------------------------------------------------------------------
def test_two_models_answer_by_name(serve: Any, models_dir: dict[str, Path]) -> None:
    with serve(model_path=models_dir["v1"], models=f"strict={models_dir['strict']}") as c:
        listing = c.get("/v1/models").json()
        # A single-model client still reads the default model's card at the top level.
        assert listing["name"] == listing["default_model"] == "flexlive-test"
        assert listing["version"] == "1.0.0" and listing["operating_points"]["eer"] == 0.5
        assert [m["name"] for m in listing["models"]] == ["flexlive-test", "strict"]
        assert [m["default"] for m in listing["models"]] == [True, False]
        strict = c.get("/v1/models/strict").json()
        assert strict == listing["models"][1]
        assert strict["version"] == "7.1.0" and strict["operating_points"]["eer"] == 0.7
        assert strict["reload_error"] is None and strict["loaded_at"].endswith("Z")
        default_card = c.get("/v1/models/flexlive-test").json()
        assert default_card["sha256"] != strict["sha256"]

        files = crop_files()
        by_default = c.post("/liveness", files=files, data={"cropped": "true"}).json()
        by_form = c.post("/liveness", files=files, data={"cropped": "true", "model": "strict"})
        by_query = c.post("/liveness?model=strict", files=files, data={"cropped": "true"})
        named_default = c.post(
            "/liveness", files=files, data={"cropped": "true", "model": "flexlive-test"}
        ).json()
        assert by_form.status_code == by_query.status_code == 200, by_form.text
        assert by_default["model"] == {
            "name": "flexlive-test",
            "version": "1.0.0",
            "sha256": default_card["sha256"],
        }
        assert named_default["model"] == by_default["model"]
        for r in (by_form.json(), by_query.json()):
            # The model block names the model that answered, by its served name.
            assert r["model"] == {"name": "strict", "version": "7.1.0", "sha256": strict["sha256"]}
            assert r["operating_point"]["threshold"] == 0.7
        assert by_default["operating_point"]["threshold"] == 0.5
        # JSON form
        import base64

        body = {"rgb": base64.b64encode(files["rgb"][1]).decode(), "cropped": True}
        r = c.post("/liveness", json={**body, "model": "strict"})
        assert r.status_code == 200 and r.json()["model"]["name"] == "strict"
        assert metric(c, "liveness_model_requests_total", model="strict") == 3
        assert metric(c, "liveness_model_requests_total", model="flexlive-test") == 2
        # The request metrics name the route, not each model name.
        assert (
            metric(
                c,
                "liveness_requests_total",
                endpoint="/v1/models/{name}",
                method="GET",
                status="200",
            )
            == 2
        )


def test_unknown_model_names_are_problems_naming_the_known_ones(
    serve: Any, models_dir: dict[str, Path]
) -> None:
    with serve(model_path=models_dir["v1"], models=f"strict={models_dir['strict']}") as c:
        body = problem(c.get("/v1/models/nope"), 404, "name", "unknown-model")
        assert "'nope'" in body["detail"] and "flexlive-test, strict" in body["detail"]
        files = crop_files()
        r = c.post("/liveness", files=files, data={"cropped": "true", "model": "nope"})
        body = problem(r, 422, "model", "unknown-model")
        assert "'nope'" in body["detail"] and "flexlive-test, strict" in body["detail"]
        r = c.post("/liveness?model=nope", files=files, data={"cropped": "true"})
        problem(r, 422, "model", "unknown-model")
        r = c.post("/liveness", json={"rgb": "AAAA", "model": "nope"})
        problem(r, 422, "model", "unknown-model")
        # Query and body must not contradict each other.
        r = c.post("/liveness?model=flexlive-test", files=files, data={"model": "strict"})
        body = problem(r, 422, "model", "invalid-input")
        assert "'flexlive-test'" in body["detail"] and "'strict'" in body["detail"]
        # A long name is refused without being echoed whole.
        r = c.post("/liveness", files=files, data={"cropped": "true", "model": "x" * 500})
        body = problem(r, 422, "model", "unknown-model")
        assert "x" * 100 not in body["detail"]
        problem(c.post("/liveness?model=" + "y" * 500, files=files), 422, "model", "invalid-input")
        assert metric(c, "liveness_model_requests_total", model="strict") == 0


def test_models_setting_is_checked_at_start_up(
    models_dir: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for bad, why in [
        ("strict", "not 'name=path'"),
        ("strict=", "not 'name=path'"),
        ("a=/x.onnx,a=/y.onnx", "given twice"),
        ("bad/name=/x.onnx", "model name 'bad/name'"),
    ]:
        monkeypatch.setenv("LIVENESS_MODELS", bad)
        with pytest.raises(SettingsError, match="LIVENESS_MODELS") as info:
            load_settings()
        assert why in str(info.value)
    monkeypatch.delenv("LIVENESS_MODELS")
    clash = Settings(
        rgb_expert=False,
        model_path=models_dir["v1"],
        models=f"flexlive-test={models_dir['strict']}",
    )
    with pytest.raises(ModelLoadError, match="default model's name"):
        ModelRegistry.load(clash, expert=None)
    unservable = Settings(
        rgb_expert=False,
        model_path=models_dir["v1"],
        models=f"lax={models_dir['no_apcer1']}",
        operating_point="apcer1",
    )
    with pytest.raises(ModelLoadError, match="model 'lax' .*'apcer1'"):
        ModelRegistry.load(unservable, expert=None)
    missing = Settings(
        rgb_expert=False, model_path=models_dir["v1"], models="gone=/nowhere/gone.onnx"
    )
    with pytest.raises(ModelLoadError, match="does not exist; set 'gone=' in LIVENESS_MODELS"):
        ModelRegistry.load(missing, expert=None)


# -- hot reload ----------------------------------------------------------------------------
def test_reload_swaps_the_model_while_concurrent_requests_all_succeed(
    serve: Any, models_dir: dict[str, Path], tmp_path: Path
) -> None:
    served = tmp_path / "model.onnx"
    shutil.copyfile(models_dir["v1"], served)
    # Admission's wait budget is off and the queue roomy: this test is about the reload,
    # and three clients on two cores would otherwise be shed by design now and then.
    with serve(model_path=served, model_reload_s=0.1, queue_wait_ratio=0, max_queue=16) as c:
        url = str(c.base_url)
        stop = threading.Event()
        answers: list[tuple[int, str]] = []
        spans: list[tuple[float, float, str]] = []  # (sent, answered, version)
        lock = threading.Lock()
        files = crop_files()

        def client_loop() -> None:
            with httpx.Client(base_url=url, timeout=30) as own:
                while not stop.is_set():
                    sent = time.monotonic()
                    r = own.post("/liveness", files=files, data={"cropped": "true"})
                    version = r.json()["model"]["version"] if r.status_code == 200 else r.text
                    with lock:
                        answers.append((r.status_code, version))
                        spans.append((sent, time.monotonic(), version))

        threads = [threading.Thread(target=client_loop) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            wait_for(lambda: len(answers) >= 10)
            publish(models_dir["v2"], served)
            wait_for(lambda: c.get("/v1/models").json()["version"] == "2.0.0")
            seen = len(answers)
            wait_for(lambda: len(answers) >= seen + 10)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
        assert all(status == 200 for status, _ in answers), [a for a in answers if a[0] != 200]
        versions = [v for _, v in answers]
        assert versions[0] == "1.0.0" and versions[-1] == "2.0.0"
        # Once the new model has answered, every request sent after that gets it (no
        # flip-flop). Requests already in flight may still finish on the old engine: by
        # design, so answers are ordered by when they were sent, not when they came back.
        first_new = min(done for _, done, v in spans if v == "2.0.0")
        later = {v for sent, _, v in spans if sent > first_new}
        assert later == {"2.0.0"}, sorted(spans)
        card = c.get("/v1/models").json()
        assert (
            card["sha256"]
            == c.post("/liveness", files=files, data={"cropped": "true"}).json()["model"]["sha256"]
        )
        assert card["reload_error"] is None
        assert c.get("/readyz").json()["model"]["version"] == "2.0.0"
        swapped = {"model": "flexlive-test", "outcome": "swapped"}
        assert metric(c, "liveness_model_reloads_total", **swapped) == 1
        info = [
            s.labels
            for f in text_string_to_metric_families(c.get("/metrics").text)
            for s in f.samples
            if s.name == "liveness_model_info"
        ]
        assert [i["version"] for i in info] == ["2.0.0"]
        # Touching the file (same bytes) is not a reload.
        os.utime(served)
        time.sleep(0.5)
        assert metric(c, "liveness_model_reloads_total", **swapped) == 1


def test_corrupt_replacement_keeps_the_old_model_serving_and_reports_the_error(
    serve: Any, models_dir: dict[str, Path], tmp_path: Path
) -> None:
    served = tmp_path / "strict.onnx"
    shutil.copyfile(models_dir["strict"], served)
    files = crop_files()
    with serve(
        model_path=models_dir["v1"],
        models=f"strict={served}",
        model_reload_s=0.1,
        operating_point="apcer1",
    ) as c:
        rejected = {"model": "strict", "outcome": "rejected"}

        def strict_card() -> dict[str, Any]:
            return next(m for m in c.get("/v1/models").json()["models"] if m["name"] == "strict")

        junk = tmp_path / "junk.onnx"
        junk.write_bytes(b"not an onnx model" * 100)
        publish(junk, served)
        wait_for(lambda: strict_card()["reload_error"] is not None)
        card = strict_card()
        assert "not a loadable ONNX model" in card["reload_error"]
        assert card["version"] == "7.1.0"
        assert metric(c, "liveness_model_reload_failing", model="strict") == 1
        assert metric(c, "liveness_model_reload_failing", model="flexlive-test") == 0
        r = c.post("/liveness", files=files, data={"cropped": "true", "model": "strict"})
        assert r.status_code == 200 and r.json()["model"]["version"] == "7.1.0"
        # The same broken file is tried once, not on every poll.
        time.sleep(0.5)
        assert metric(c, "liveness_model_reloads_total", **rejected) == 1

        # A valid ONNX file that this deployment cannot serve (no 'apcer1') is refused too.
        publish(models_dir["no_apcer1"], served)
        wait_for(lambda: metric(c, "liveness_model_reloads_total", **rejected) == 2)
        assert "apcer1" in strict_card()["reload_error"]
        r = c.post("/liveness", files=files, data={"cropped": "true", "model": "strict"})
        assert r.status_code == 200 and r.json()["model"]["version"] == "7.1.0"

        # The serving file copied back clears the error without a reload.
        publish(models_dir["strict"], served)
        wait_for(lambda: strict_card()["reload_error"] is None)
        assert metric(c, "liveness_model_reload_failing", model="strict") == 0
        assert metric(c, "liveness_model_reloads_total", model="strict", outcome="swapped") == 0
        assert strict_card()["version"] == "7.1.0"
        publish(junk, served)
        wait_for(lambda: metric(c, "liveness_model_reloads_total", **rejected) == 3)

        # A good file clears the error.
        publish(models_dir["v3"], served)
        wait_for(lambda: strict_card()["version"] == "3.0.0")
        assert strict_card()["reload_error"] is None
        assert metric(c, "liveness_model_reload_failing", model="strict") == 0
        assert metric(c, "liveness_model_reloads_total", model="strict", outcome="swapped") == 1
        r = c.post("/liveness", files=files, data={"cropped": "true", "model": "strict"})
        assert r.json()["model"] == {
            "name": "strict",
            "version": "3.0.0",
            "sha256": strict_card()["sha256"],
        }
        # The default model was never touched.
        assert c.get("/v1/models").json()["version"] == "1.0.0"


def test_a_request_holding_the_old_pipeline_finishes_on_it(
    models_dir: dict[str, Path], tmp_path: Path
) -> None:
    from sensors.bundle import FrameBundle

    served = tmp_path / "model.onnx"
    shutil.copyfile(models_dir["v1"], served)
    settings = Settings(model_path=served, rgb_expert=False, intra_op_threads=1)
    registry = ModelRegistry.load(settings, expert=None)
    try:
        in_flight = registry.get()  # what a request took before the swap
        publish(models_dir["v2"], served)
        assert registry.check_reloads() == {"flexlive-test": "swapped"}
        assert registry.get().engine.info.version == "2.0.0"
        rng = np.random.default_rng(0)
        crop = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
        analysis = in_flight.analyze(FrameBundle(rgb=crop), cropped=True)
        assert analysis.model.version == "1.0.0" and analysis.faces[0].score is not None
        assert registry.check_reloads() == {}  # nothing changed since
        with pytest.raises(UnknownModelError, match="flexlive-test"):
            registry.get("other")
    finally:
        registry.close()


def test_an_injected_engine_is_not_closed_by_the_app(
    serve: Any, models_dir: dict[str, Path], live_server: Any
) -> None:
    engine = InferenceEngine.load(models_dir["v1"], providers="cpu", intra_op_threads=1)
    settings = Settings(model_path=models_dir["v1"], rgb_expert=False)
    with live_server(create_app(settings, engine=engine)) as url:
        wait_for(lambda: httpx.get(url + "/readyz").status_code == 200)
    assert engine.predict([]) == []  # still open: its owner closes it
    engine.close()


def test_a_pinned_operating_point_pins_the_model_too(
    serve: Any, models_dir: dict[str, Path]
) -> None:
    keys = "kiosk:kiosk-key-0123456789,lab:lab-key-0123456789ab"
    with serve(
        model_path=models_dir["v1"],
        models=f"strict={models_dir['strict']}",
        api_keys=keys,
        client_operating_point="deny",
        client_operating_point_keys="lab",
    ) as c:
        files = crop_files()
        kiosk = {"X-API-Key": "kiosk-key-0123456789"}
        r = c.post("/liveness", files=files, data={"model": "strict"}, headers=kiosk)
        body = problem(r, 403, "model", "operating-point-not-allowed")
        assert "'flexlive-test'" in body["detail"] and "'strict'" in body["detail"]
        # Naming the default model changes nothing and is fine.
        r = c.post(
            "/liveness",
            files=files,
            data={"cropped": "true", "model": "flexlive-test"},
            headers=kiosk,
        )
        assert r.status_code == 200, r.text
        lab = {"X-API-Key": "lab-key-0123456789ab"}
        r = c.post(
            "/liveness", files=files, data={"cropped": "true", "model": "strict"}, headers=lab
        )
        assert r.status_code == 200 and r.json()["model"]["name"] == "strict"
        refused = {"kind": "operating-point-not-allowed"}
        assert metric(c, "liveness_policy_refusals_total", **refused) == 1
