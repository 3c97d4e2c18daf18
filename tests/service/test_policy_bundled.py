"""The modality downgrade of issue 10, with the bundled model on synthetic silicone masks
(test-split people, seeds never used in training).

Without a policy a silicone mask that RGB + depth + IR decides ``spoof`` is scored on
RGB alone when the client (or a failing sensor) leaves depth and IR out. With
``accepted_modalities = "rgb+depth+ir,depth+ir"``:

- the REST API refuses an RGB-only request (422 ``modality-not-accepted``), still decides
  the full capture ``spoof``, and answers ``uncertain`` / ``modality_not_accepted`` without
  a score when it had to drop the depth and IR images itself (modality health);
- the camera daemon decides each RGB-only frame ``uncertain`` with that reason, so the
  mask's track never turns ``live``; ``liveness daemon --accepted-modalities`` wires it.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from click.testing import CliRunner

from models import DEFAULT_MODEL_PATH
from sensors.config import SyntheticConfig, create_source
from service.api import create_app
from service.daemon.config import DaemonConfig
from service.daemon.outputs import Output
from service.daemon.runner import LivenessDaemon
from service.settings import Settings
from synth import render_scene

POLICY = "rgb+depth+ir,depth+ir"
#: A test-split silicone mask that RGB+D+IR decides spoof (measured with model 2.0.0).
MASK_SEED = 3_000_000_023
#: A silicone-mask sequence whose frames RGB alone scores live (the daemon's downgrade).
SEQUENCE_SEED = 7


def _png(img: np.ndarray) -> bytes:
    return cv2.imencode(".png", img)[1].tobytes()


@pytest.fixture(scope="module")
def mask_files() -> dict[str, tuple[str, bytes]]:
    scene = render_scene("mask_silicone", "d435", MASK_SEED, split="test")
    return {
        "rgb": ("rgb.png", _png(cv2.cvtColor(scene.rgb, cv2.COLOR_RGB2BGR))),
        "depth": ("depth.png", _png(scene.depth)),
        "ir": ("ir.png", _png(scene.ir)),
    }


@pytest.fixture(scope="module")
def client(live_server: Any) -> Iterator[httpx.Client]:
    settings = Settings(model_path=DEFAULT_MODEL_PATH, max_faces=1, accepted_modalities=POLICY)
    with live_server(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as c:
        deadline = time.monotonic() + 60
        while c.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.05)
        yield c


def test_rgb_only_mask_is_refused_and_the_full_capture_is_spoof(
    client: httpx.Client, mask_files: dict[str, tuple[str, bytes]]
) -> None:
    r = client.post("/liveness", files={"rgb": mask_files["rgb"]})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["type"].endswith("/modality-not-accepted") and body["field"] == "modalities"
    assert "sent rgb" in body["detail"] and "rgb+depth+ir or depth+ir" in body["detail"]

    r = client.post("/liveness", files=mask_files, data={"depth_scale": "0.001"})
    assert r.status_code == 200, r.text
    (face,) = r.json()["faces"]
    assert face["decision"] == "spoof", face


def test_depth_and_ir_dropped_by_the_service_leave_the_mask_uncertain(
    client: httpx.Client, mask_files: dict[str, tuple[str, bytes]]
) -> None:
    """All three images sent, but depth and IR are blank: modality health drops them and
    the decision would rest on RGB alone, which the policy does not accept."""
    h, w = cv2.imdecode(np.frombuffer(mask_files["rgb"][1], np.uint8), cv2.IMREAD_COLOR).shape[:2]
    files = {
        "rgb": mask_files["rgb"],
        "depth": ("depth.png", _png(np.zeros((h, w), np.uint16))),
        "ir": ("ir.png", _png(np.zeros((h, w), np.uint8))),
    }
    r = client.post("/liveness", files=files)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["modalities_received"] == ["rgb", "depth", "ir"]
    assert body["modalities_used"] == ["rgb"]
    assert "modality_not_accepted" in body["reasons"]
    (face,) = body["faces"]
    assert face["decision"] == "uncertain" and face["score"] is None, face
    assert "modality_not_accepted" in face["reasons"]


class _Events(Output):
    name = "events"

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.decisions: list[dict[str, Any]] = []

    def frame(self, event: dict[str, Any]) -> None:
        self.frames.append(event)

    def decision(self, event: dict[str, Any]) -> None:
        self.decisions.append(event)

    def close(self, timeout: float) -> None:
        pass


def _run_daemon(analyzer: Any, modalities: tuple[str, ...]) -> _Events:
    config = SyntheticConfig(
        species="mask_silicone",
        modalities=modalities,  # type: ignore[arg-type]
        n_frames=12,
        seed=SEQUENCE_SEED,
        real_time=False,
        loop=False,
    )
    events = _Events()
    LivenessDaemon(
        lambda: create_source(config), analyzer, [events], DaemonConfig(http_port=None)
    ).run()
    assert len(events.frames) == 12
    return events


def test_daemon_rgb_only_frames_are_uncertain_under_the_policy() -> None:
    from service.daemon.analysis import build_pipeline_analyzer

    analyzer = build_pipeline_analyzer(DEFAULT_MODEL_PATH, accepted_modalities=POLICY)
    open_analyzer = build_pipeline_analyzer(DEFAULT_MODEL_PATH, accepted_modalities="any")
    try:
        events = _run_daemon(analyzer, ("rgb",))
        faces = [e["faces"][0] for e in events.frames if e["faces"]]
        assert len(faces) >= 10, "the face stage should find the mask"
        for event in events.frames:
            assert "modality_not_accepted" in event["reasons"], event
        for face in faces:
            assert face["frame_decision"] == "uncertain" and face["frame_score"] is None
            assert "modality_not_accepted" in face["reasons"]
        assert faces[-1]["decision"] == "uncertain" and events.decisions == []

        # Without the policy the same RGB-only frames are scored and vote.
        open_faces = [e["faces"][0] for e in _run_daemon(open_analyzer, ("rgb",)).frames]
        assert all(f["frame_score"] is not None for f in open_faces if f)
        # With all three modalities the policy is met and the mask is caught.
        full = _run_daemon(analyzer, ("rgb", "depth", "ir"))
        assert full.frames[-1]["faces"][0]["decision"] == "spoof"
        assert "modality_not_accepted" not in full.frames[-1]["reasons"]
    finally:
        analyzer.close()
        open_analyzer.close()


@pytest.fixture
def keep_signal_handlers() -> Iterator[None]:
    """``liveness daemon`` installs SIGTERM/SIGINT handlers; put pytest's back after."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.usefixtures("keep_signal_handlers")
def test_daemon_command_takes_the_policy(tmp_path: Path) -> None:
    from service.cli import main

    jsonl = tmp_path / "events.jsonl"
    source = (
        f"synthetic:d435?species=mask_silicone&modalities=rgb&seed={SEQUENCE_SEED}"
        "&n_frames=4&real_time=false&loop=false"
    )
    args = ["daemon", "--source", source, "--output", f"jsonl:{jsonl}", "--no-http"]
    result = CliRunner().invoke(main, [*args, "--accepted-modalities", "depth+ir"])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in jsonl.read_text().splitlines()]
    frames = [e for e in events if e["type"] == "frame"]
    assert len(frames) == 4
    assert all("modality_not_accepted" in e["reasons"] for e in frames)

    bad = CliRunner().invoke(main, [*args, "--accepted-modalities", "rgb+thermal"])
    assert bad.exit_code == 1 and "LIVENESS_ACCEPTED_MODALITIES" in bad.output
    assert "unknown modality" in bad.output and "Traceback" not in bad.output
