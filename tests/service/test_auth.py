"""Optional API keys: header forms, constant-time lookup, named keys in metrics and logs
(never the key), keys from the environment and a file, start-up refusals, the per-key
spoof lockout (injectable clock), a keyed /metrics and the redacted /v1/models."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from click.testing import CliRunner

from service.api import create_app
from service.api.auth import KeyRing, SpoofLockout, load_keys, presented_key
from service.settings import Settings, SettingsError

KIOSK = "kiosk-key-0123456789abcdef"
LAB = "lab-key-fedcba9876543210xyz"
KEYS = f"kiosk:{KIOSK},lab:{LAB}"
SIZE = 96


def crop_files(level: int) -> dict[str, tuple[str, bytes, str]]:
    """An aligned RGB+D+IR crop; the test model scores bright crops live, dark ones spoof."""
    rng = np.random.default_rng(level)
    imgs = {
        "rgb": np.clip(rng.normal(level, 12, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8),
        "depth": rng.integers(480, 540, (SIZE, SIZE), dtype=np.uint16),
        "ir": rng.integers(40, 200, (SIZE, SIZE), dtype=np.uint8),
    }
    return {
        m: (f"{m}.png", cv2.imencode(".png", a)[1].tobytes(), "image/png") for m, a in imgs.items()
    }


LIVE, SPOOF = 190, 55


@pytest.fixture
def make_client(test_model_path: Path, live_server: Any) -> Callable[..., Any]:
    @contextmanager
    def make(clock: Callable[[], float] | None = None, **overrides: Any) -> Iterator[httpx.Client]:
        settings = Settings(model_path=test_model_path, intra_op_threads=1, **overrides)
        app = create_app(settings)
        if clock is not None:
            app.state.auth.lockout.clock = clock
        with live_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            deadline = time.monotonic() + 30
            while client.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "never ready"
                time.sleep(0.02)
            yield client

    return make


def post(client: httpx.Client, level: int = LIVE, key: str | None = None, **headers: str) -> Any:
    if key is not None:
        headers["X-API-Key"] = key
    return client.post(
        "/liveness", files=crop_files(level), data={"cropped": "true"}, headers=headers
    )


def metric(client: httpx.Client, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = client.get("/metrics", headers={"X-API-Key": KIOSK}).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def problem(r: Any, status: int, kind: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["type"].endswith("/" + kind), body
    assert "Traceback" not in r.text
    return body


# -- keys accepted and refused -----------------------------------------------------------
def test_keys_by_header_or_bearer_and_401_otherwise(
    make_client: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with make_client(api_keys=KEYS) as client:
        missing = problem(post(client), 401, "missing-api-key")
        assert "X-API-Key" in missing["detail"] and missing["field"] == "X-API-Key"
        r = post(client)
        assert r.headers["www-authenticate"] == 'Bearer realm="flexlive"'
        wrong = post(client, key=KIOSK[:-1] + "X")
        problem(wrong, 401, "invalid-api-key")
        assert wrong.headers["www-authenticate"].startswith('Bearer realm="flexlive"')
        assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
        problem(post(client, Authorization=f"Basic {KIOSK}"), 401, "missing-api-key")

        assert post(client, key=KIOSK).status_code == 200
        r = post(client, Authorization=f"Bearer {LAB}")
        assert r.status_code == 200 and r.json()["faces"][0]["decision"] == "live"
        # health and readiness stay open; /metrics is open by default
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        assert client.get("/metrics").status_code == 200
        assert metric(client, "liveness_auth_failures_total", reason="missing") == 3
        assert metric(client, "liveness_auth_failures_total", reason="invalid") == 1
        assert metric(client, "liveness_key_decisions_total", key="lab", decision="live") == 1
        metrics_text = client.get("/metrics").text
    # key names label the metrics and the analysis log; the keys themselves never appear
    assert 'key="kiosk"' in metrics_text and KIOSK not in metrics_text and LAB not in metrics_text
    logged = [r for r in caplog.records if getattr(r, "api_key", None) == "lab"]
    assert logged, "the analysis log line names the key"
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert KIOSK not in text and LAB not in text


def test_without_keys_everything_stays_open(make_client: Callable[..., Any]) -> None:
    with make_client() as client:
        assert post(client).status_code == 200
        card = client.get("/v1/models").json()
        assert "evaluation" in card and "operating_points" in card


def test_lookup_compares_every_key_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    ring = KeyRing([("a", "a" * 20), ("b", "b" * 20), ("c", "c" * 30)])
    assert ring.identify("a" * 20) == "a"
    # no early exit on the first match, and equal-length digests whatever the key length
    assert calls == [(32, 32)] * 3
    calls.clear()
    assert ring.identify("b" * 19) is None and ring.identify("") is None
    assert calls == [(32, 32)] * 6
    assert ring.identify("c" * 30) == "c"


def test_presented_key_header_forms() -> None:
    assert presented_key({"x-api-key": " k1 "}) == "k1"
    assert presented_key({"authorization": "Bearer k2"}) == "k2"
    assert presented_key({"authorization": "bearer   k3"}) == "k3"
    assert presented_key({"x-api-key": "k1", "authorization": "Bearer k2"}) == "k1"
    assert presented_key({"authorization": "Basic k2"}) is None
    assert presented_key({"authorization": "Bearer "}) is None
    assert presented_key({}) is None


# -- keys from a file and the environment; start-up refusals ----------------------------
def test_keys_file_and_environment(tmp_path: Path, test_model_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"# door controllers\n\nkiosk:{KIOSK}\n  lab : {LAB}  \n")
    keys_file.chmod(0o600)
    env_key = "door-key-000000000000000000"
    settings = Settings(
        model_path=test_model_path,
        api_keys_file=keys_file,
        api_keys=f"door:{env_key}",
    )
    assert [name for name, _ in load_keys(settings)] == ["door", "kiosk", "lab"]
    assert KeyRing(load_keys(settings)).identify(LAB) == "lab"
    # the secret stays out of the settings' repr and dump
    assert env_key not in repr(settings) and env_key not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("content", "mode", "needle"),
    [
        (f"kiosk:{KIOSK}\n", 0o644, "readable or writable by every user"),
        (f"kiosk:{KIOSK}\n", 0o602, "chmod 600"),
        ("kiosk:short-key\n", 0o600, "at least 16 characters"),
        (f"kiosk {KIOSK}\n", 0o600, "expected 'name:key'"),
        (f"ki/osk:{KIOSK}\n", 0o600, "expected 'name:key'"),
        (f"kiosk:{KIOSK}\nkiosk:{LAB}\n", 0o600, "used twice: kiosk"),
        (f"kiosk:{KIOSK}\nlab:{KIOSK}\n", 0o600, "are the same key"),
    ],
)
def test_bad_keys_file_is_refused_without_quoting_keys(
    tmp_path: Path, test_model_path: Path, content: str, mode: int, needle: str
) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text(content)
    keys_file.chmod(mode)
    settings = Settings(model_path=test_model_path, api_keys_file=keys_file)
    with pytest.raises(SettingsError) as info:
        load_keys(settings)
    assert needle in str(info.value)
    assert KIOSK not in str(info.value) and "short-key" not in str(info.value)
    with pytest.raises(SettingsError):  # the app refuses to build, too
        create_app(settings)


def test_missing_keys_file_and_lockout_without_keys_are_refused(
    tmp_path: Path, test_model_path: Path
) -> None:
    with pytest.raises(SettingsError, match="cannot read"):
        create_app(Settings(model_path=test_model_path, api_keys_file=tmp_path / "nope"))
    with pytest.raises(SettingsError, match="needs LIVENESS_API_KEYS"):
        create_app(Settings(model_path=test_model_path, lockout_spoofs=3))
    with pytest.raises(SettingsError, match="needs API keys"):
        create_app(Settings(model_path=test_model_path, metrics_require_key=True))


def test_serve_refuses_bad_keys_before_loading_the_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from service.cli import main

    monkeypatch.setenv("LIVENESS_API_KEYS", "kiosk:tooshort")
    monkeypatch.setenv("LIVENESS_MODEL_PATH", str(tmp_path / "absent.onnx"))
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 1, result.output
    assert "LIVENESS_API_KEYS entry 1 ('kiosk')" in result.output
    assert "tooshort" not in result.output and "Traceback" not in result.output


# -- lockout -----------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_lockout_triggers_and_expires(make_client: Callable[..., Any]) -> None:
    clock = FakeClock()
    with make_client(clock, api_keys=KEYS, lockout_spoofs=3, lockout_window_s=60) as client:
        for _ in range(2):
            r = post(client, SPOOF, key=KIOSK)
            assert r.json()["faces"][0]["decision"] == "spoof"
        assert post(client, LIVE, key=KIOSK).status_code == 200  # live decisions don't count
        clock.now += 10
        third = post(client, SPOOF, key=KIOSK)
        assert third.status_code == 200  # the request that trips the lock is answered
        locked = post(client, LIVE, key=KIOSK)
        body = problem(locked, 429, "key-locked")
        assert locked.headers["retry-after"] == "60" and "'kiosk'" in body["detail"]
        assert KIOSK not in locked.text
        assert post(client, SPOOF, key=LAB).status_code == 200  # other keys are unaffected
        clock.now += 59.5
        assert post(client, key=KIOSK).headers["retry-after"] == "1"
        assert metric(client, "liveness_key_lockouts_total", key="kiosk") == 1
        assert metric(client, "liveness_key_lockouts_total", key="lab") == 0
        assert metric(client, "liveness_key_locked_refusals_total", key="kiosk") == 2
        clock.now += 0.5
        r = post(client, LIVE, key=KIOSK)
        assert r.status_code == 200, r.text  # the window has passed
        # a fresh count: one more spoof does not lock again
        assert post(client, SPOOF, key=KIOSK).status_code == 200
        assert post(client, LIVE, key=KIOSK).status_code == 200


def test_lockout_is_off_by_default(make_client: Callable[..., Any]) -> None:
    with make_client(api_keys=KEYS) as client:
        for _ in range(6):
            assert post(client, SPOOF, key=KIOSK).status_code == 200
        assert metric(client, "liveness_key_decisions_total", key="kiosk", decision="spoof") == 6
        assert metric(client, "liveness_key_lockouts_total", key="kiosk") == 0


def test_lockout_counts_only_spoofs_inside_the_window() -> None:
    clock = FakeClock()
    lockout = SpoofLockout(3, 60.0, clock)
    for _ in range(4):  # spread 40 s apart: never three within 60 s
        assert not lockout.record_spoof("k")
        clock.now += 40
    assert lockout.locked_for("k") == 0
    assert not lockout.record_spoof("k") and lockout.record_spoof("k")
    assert lockout.locked_for("k") == 60.0 and lockout.locked_for("other") == 0
    assert not SpoofLockout(0, 60.0, clock).record_spoof("k")  # 0 = off


# -- /metrics and /v1/models -------------------------------------------------------------
def test_metrics_can_require_a_key(make_client: Callable[..., Any]) -> None:
    with make_client(api_keys=KEYS, metrics_require_key=True) as client:
        r = client.get("/metrics")
        problem(r, 401, "missing-api-key")
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert client.get("/metrics", headers={"Authorization": f"Bearer {LAB}"}).status_code == 200
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200


def test_model_card_is_a_summary_without_a_key(make_client: Callable[..., Any]) -> None:
    with make_client(api_keys=KEYS, accepted_modalities="depth+ir") as client:
        summary = client.get("/v1/models")
        assert summary.status_code == 200
        body = summary.json()
        summary_keys = {"name", "version", "modalities", "accepted_modalities", "detail"}
        assert set(body) == summary_keys | {"default", "default_model", "models"}
        assert body["name"] == "flexlive-test" and body["accepted_modalities"] == ["depth+ir"]
        # every listed model is a summary too: no thresholds, no evaluation
        (listed,) = body["models"]
        assert set(listed) == summary_keys | {"default"} and listed["name"] == "flexlive-test"
        one = client.get("/v1/models/flexlive-test").json()
        assert set(one) == summary_keys | {"default"}
        problem(client.get("/v1/models", headers={"X-API-Key": "nope"}), 401, "invalid-api-key")
        full = client.get("/v1/models", headers={"X-API-Key": KIOSK}).json()
        assert full["operating_points"] == {"eer": 0.5, "apcer1": 0.8}
        assert "evaluation" in full and full["accepted_modalities"] == ["depth+ir"]
        assert full["client_operating_point"] == "allow"
        # the OpenAPI document says so, too
        paths = client.get("/openapi.json").json()["paths"]
        assert {"200", "401"} <= set(paths["/v1/models"]["get"]["responses"])
        assert {"401", "403", "422", "429"} <= set(paths["/liveness"]["post"]["responses"])
