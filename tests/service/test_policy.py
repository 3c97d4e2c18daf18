"""The deployment policy with the test model: accepted modality sets (sent and used),
the pinned operating point and its per-key allowance, and the policy parser."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from service.api import create_app
from service.policy import ModalityPolicy, parse_accepted_modalities
from service.settings import Settings, SettingsError, load_settings

SIZE = 96
LAB = "lab-key-fedcba9876543210xyz"
KIOSK = "kiosk-key-0123456789abcdef"


def images(level: int = 190) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(level)
    return {
        "rgb": np.clip(rng.normal(level, 12, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8),
        "depth": rng.integers(480, 540, (SIZE, SIZE), dtype=np.uint16),
        "ir": rng.integers(40, 200, (SIZE, SIZE), dtype=np.uint8),
    }


def png(a: np.ndarray) -> bytes:
    return cv2.imencode(".png", a)[1].tobytes()


def files(subset: tuple[str, ...], **replace: np.ndarray) -> dict[str, tuple[str, bytes]]:
    imgs = {**images(), **replace}
    return {m: (f"{m}.png", png(imgs[m])) for m in subset}


@pytest.fixture
def make_client(test_model_path: Path, live_server: Any) -> Callable[..., Any]:
    @contextmanager
    def make(**overrides: Any) -> Iterator[httpx.Client]:
        settings = Settings(model_path=test_model_path, intra_op_threads=1, **overrides)
        with (
            live_server(create_app(settings)) as url,
            httpx.Client(base_url=url, timeout=30) as client,
        ):
            deadline = time.monotonic() + 30
            while client.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "never ready"
                time.sleep(0.02)
            yield client

    return make


def problem(r: Any, status: int, kind: str, field: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["type"].endswith("/" + kind) and body["field"] == field, body
    return body


# -- parser and settings -------------------------------------------------------------------
def test_accepted_modalities_are_required_sets() -> None:
    assert parse_accepted_modalities("any") is None
    assert parse_accepted_modalities(" IR+Depth ; rgb+depth+ir,ir+depth") == (
        ("depth", "ir"),
        ("rgb", "depth", "ir"),
    )
    policy = ModalityPolicy.parse("rgb+depth,depth+ir")
    assert policy.accepts(["rgb", "depth"]) and policy.accepts(["depth", "ir"])
    assert policy.accepts(["rgb", "depth", "ir"])  # more evidence is never refused
    assert not policy.accepts(["rgb"]) and not policy.accepts(["rgb", "ir"])
    assert not policy.accepts([])
    assert ModalityPolicy().accepts(["ir"]) and ModalityPolicy.parse("any").names() == ["any"]


def test_bad_policy_settings_fail_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(accepted_modalities="ir+depth, rgb").accepted_modalities == "depth+ir,rgb"
    monkeypatch.setenv("LIVENESS_ACCEPTED_MODALITIES", "rgb+thermal")
    with pytest.raises(SettingsError, match="LIVENESS_ACCEPTED_MODALITIES.*unknown modality"):
        load_settings()
    monkeypatch.setenv("LIVENESS_ACCEPTED_MODALITIES", "any")
    monkeypatch.setenv("LIVENESS_CLIENT_OPERATING_POINT", "sometimes")
    with pytest.raises(SettingsError, match="LIVENESS_CLIENT_OPERATING_POINT"):
        load_settings()


# -- modality sets through the API ------------------------------------------------------
def test_sent_set_that_falls_short_is_422(make_client: Callable[..., Any]) -> None:
    with make_client(accepted_modalities="rgb+depth+ir,depth+ir") as client:
        for subset in [("rgb",), ("rgb", "depth"), ("rgb", "ir"), ("ir",)]:
            r = client.post("/liveness", files=files(subset), data={"cropped": "true"})
            body = problem(r, 422, "modality-not-accepted", "modalities")
            assert "rgb+depth+ir or depth+ir" in body["detail"], body
            assert f"sent {'+'.join(subset)}" in body["detail"], body
        r = client.post(
            "/liveness",
            json={"rgb": base64.b64encode(png(images()["rgb"])).decode(), "cropped": True},
        )
        problem(r, 422, "modality-not-accepted", "modalities")
        for subset in [("depth", "ir"), ("rgb", "depth", "ir")]:
            r = client.post("/liveness", files=files(subset), data={"cropped": "true"})
            assert r.status_code == 200, r.text
            assert r.json()["faces"][0]["score"] is not None
        text = client.get("/metrics").text
        assert 'liveness_policy_refusals_total{kind="modality-not-accepted"} 5.0' in text


def test_a_modality_dropped_by_health_makes_the_face_uncertain(
    make_client: Callable[..., Any],
) -> None:
    """The client sent RGB+D+IR, but the depth image is empty: the subset actually used
    (rgb+ir) falls short, so the face is uncertain with a reason and no score."""
    zero_depth = np.zeros((SIZE, SIZE), np.uint16)
    with make_client(accepted_modalities="rgb+depth+ir,depth+ir") as client:
        r = client.post(
            "/liveness",
            files=files(("rgb", "depth", "ir"), depth=zero_depth),
            data={"cropped": "true"},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["modalities_received"] == ["rgb", "depth", "ir"]
        assert body["modalities_used"] == ["rgb", "ir"]
        assert "depth_unusable" in body["reasons"] and "modality_not_accepted" in body["reasons"]
        (face,) = body["faces"]
        assert face["decision"] == "uncertain" and face["score"] is None
        assert face["ood_distance"] is None and not face.get("scores")
        assert "modality_not_accepted" in face["reasons"]
    # the same request without a policy is scored on rgb+ir (the downgrade the policy stops)
    with make_client() as client:
        r = client.post(
            "/liveness",
            files=files(("rgb", "depth", "ir"), depth=zero_depth),
            data={"cropped": "true"},
        )
        face = r.json()["faces"][0]
        assert face["score"] is not None and face["decision"] == "live"
        assert "modality_not_accepted" not in face["reasons"]


# -- operating point -------------------------------------------------------------------------
def test_operating_point_is_open_by_default(make_client: Callable[..., Any]) -> None:
    with make_client() as client:
        r = client.post(
            "/liveness",
            files=files(("rgb",)),
            data={"cropped": "true", "operating_point": "apcer1"},
        )
        assert r.status_code == 200 and r.json()["operating_point"]["name"] == "apcer1"


def test_pinned_operating_point_with_a_per_key_allowance(make_client: Callable[..., Any]) -> None:
    with make_client(
        client_operating_point="deny",
        operating_point="apcer1",
        api_keys=f"lab:{LAB},kiosk:{KIOSK}",
        client_operating_point_keys="lab",
    ) as client:

        def ask(key: str, op: str | None) -> Any:
            data = {"cropped": "true", **({"operating_point": op} if op else {})}
            return client.post(
                "/liveness", files=files(("rgb",)), data=data, headers={"X-API-Key": key}
            )

        body = problem(ask(KIOSK, "eer"), 403, "operating-point-not-allowed", "operating_point")
        assert "pins the operating point 'apcer1'" in body["detail"]
        for op in (None, "apcer1"):  # leaving it out or naming the pinned one is fine
            r = ask(KIOSK, op)
            assert r.status_code == 200 and r.json()["operating_point"]["name"] == "apcer1"
        r = ask(LAB, "eer")  # the allowed key may still choose
        assert r.status_code == 200 and r.json()["operating_point"]["threshold"] == 0.5
        card = client.get("/v1/models", headers={"X-API-Key": KIOSK}).json()
        assert card["client_operating_point"] == "deny"
        assert card["default_operating_point"] == "apcer1"
        text = client.get("/metrics").text
        assert 'liveness_policy_refusals_total{kind="operating-point-not-allowed"} 1.0' in text


def test_pinned_operating_point_without_keys(make_client: Callable[..., Any]) -> None:
    with make_client(client_operating_point="deny") as client:
        r = client.post(
            "/liveness",
            files=files(("rgb",)),
            data={"cropped": "true", "operating_point": "apcer1"},
        )
        problem(r, 403, "operating-point-not-allowed", "operating_point")
        r = client.post(
            "/liveness", json={"rgb": base64.b64encode(png(images()["rgb"])).decode(),
                               "cropped": True, "operating_point": "eer"},
        )  # fmt: skip
        assert r.status_code == 200, r.text
