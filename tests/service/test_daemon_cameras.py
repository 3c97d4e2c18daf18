"""Several cameras in one daemon process, from a cameras file (``liveness daemon --config``).

- The file is validated by the daemon's own pydantic models; every error names the camera
  and the field; the CLI turns it into exit 2 and a message, never a traceback.
- The example in docs/examples/cameras.yaml loads, and docs/daemon.md shows it verbatim.
- A group of cameras runs each camera in its own loop, sharing one analyser: each
  camera's events carry its name and its own decisions; metrics are labelled by camera;
  one HTTP server answers for all of them.
- ``liveness daemon --config`` end to end with the bundled model and two folder sources.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from daemon_testing import ListSource, MarkerAnalyzer, marker_bundles

from sensors.base import FrameSource
from sensors.bundle import FrameBundle
from service.daemon.cameras import (
    CameraConfigError,
    CameraGroup,
    build_group,
    load_cameras_file,
    parse_cameras,
)
from service.daemon.outputs import Output

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "cameras.yaml"


class Collector(Output):
    name = "collector"

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.decisions: list[dict[str, Any]] = []

    def frame(self, event: dict[str, Any]) -> None:
        self.frames.append(event)

    def decision(self, event: dict[str, Any]) -> None:
        self.decisions.append(event)

    def close(self, timeout: float) -> None:
        pass


def problems(raw: Any) -> list[str]:
    with pytest.raises(CameraConfigError) as info:
        parse_cameras(raw, "cams.yaml")
    return str(info.value).splitlines()


# -- validation --------------------------------------------------------------------------
def test_errors_name_the_camera_and_the_field() -> None:
    lines = problems(
        {
            "cameras": [
                {"name": "door", "source": {"type": "recording"}, "tracker": {"window": 0}},
                {"name": "kiosk", "source": "video:", "outputs": ["stdout", "ftp://x"]},
                {"source": "camera:0", "operating_point": "eer"},
                {"name": "lab", "source": "camera:0", "accepted_modalities": "rgb+heat"},
                {"name": "hall", "source": "camera:0", "colour": "red"},
            ]
        }
    )
    joined = "\n".join(lines)
    assert all(line.startswith("cams.yaml: ") for line in lines)
    assert "camera 'door': source.path: Field required" in joined
    assert re.search(r"camera 'door': tracker\.window: .*greater than or equal to 1", joined)
    assert "camera 'kiosk': source: 'video' needs a path" in joined
    assert "camera 'kiosk': outputs[1]: bad output 'ftp://x'" in joined
    assert "camera #3: name: Field required" in joined  # no name: its position
    assert "camera 'lab': accepted_modalities: unknown modality ['heat']" in joined
    assert "camera 'hall': colour: Extra inputs are not permitted" in joined
    assert len(lines) == 7


def test_file_level_errors() -> None:
    assert problems({"cameras": []})[0].startswith("cams.yaml: cameras: List should have at least")
    assert "cams.yaml: expected a mapping" in problems(["camera:0"])[0]
    twice = problems({"cameras": [{"name": "a", "source": "camera:0"}] * 2})
    assert twice == ["cams.yaml: cameras: camera name 'a' is used twice"]
    bad_mqtt = problems({"mqtt": {"host": "b", "qos": 3, "topic_prefix": "a/#"}, "cameras": []})
    assert any(line.startswith("cams.yaml: mqtt.qos: ") for line in bad_mqtt)
    assert any("mqtt.topic_prefix: must not contain MQTT wildcards" in line for line in bad_mqtt)
    assert problems({"cameras": [{"name": "a/b", "source": "camera:0"}]})[0].startswith(
        "cams.yaml: camera 'a/b': name: use 1-64 letters"
    )


def test_a_source_is_a_uri_or_its_own_fields() -> None:
    cams = parse_cameras(
        {
            "cameras": [
                {"name": "a", "source": "recording:/r/a.db3?real_time=true&modalities=rgb,depth"},
                {"name": "b", "source": {"type": "recording", "path": "/r/a.db3", "real_time": True,
                                          "modalities": ["rgb", "depth"]}},
            ]
        }
    )  # fmt: skip
    assert cams.cameras[0].source == cams.cameras[1].source
    assert cams.cameras[0].outputs == ["stdout"]


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(CameraConfigError, match="cannot read .*nope.yaml"):
        load_cameras_file(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras:\n  - name: a\n   source: x\n")
    with pytest.raises(CameraConfigError, match=r"bad.yaml: not valid YAML \(line 3, column 4\)"):
        load_cameras_file(bad)


def test_the_documented_example_loads_and_is_the_one_in_the_docs() -> None:
    cams = load_cameras_file(EXAMPLE)
    assert [c.name for c in cams.cameras] == ["door", "kiosk", "lobby-replay"]
    door, kiosk, lobby = cams.cameras
    assert door.source.type == "realsense" and door.accepted_modalities == "rgb+depth+ir,depth+ir"
    assert kiosk.source.type == "camera" and kiosk.tracker.window == 20
    assert kiosk.operating_point == "apcer1" and lobby.on_end == "reopen"
    assert cams.mqtt is not None and cams.mqtt.topics("door")["events"] == "flexlive/door/events"
    doc = (ROOT / "docs" / "daemon.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", doc, re.S)
    assert EXAMPLE.read_text() in blocks, "docs/daemon.md must show docs/examples/cameras.yaml"


# -- a group of cameras ------------------------------------------------------------------
def group_for(
    scores: dict[str, list[float]], collectors: dict[str, Collector], **http: Any
) -> tuple[CameraGroup, MarkerAnalyzer]:
    cams = parse_cameras(
        {
            "http": {"port": http.get("port")},
            "cameras": [
                {
                    "name": name,
                    "source": "folder:/unused",  # replaced below by a ListSource
                    "outputs": [],
                    "tracker": {"min_live_frames": 8, "min_spoof_frames": 4},
                    "reconnect_initial_s": 0.05,
                }
                for name in scores
            ],
        }
    )
    shared = MarkerAnalyzer()  # one analyser for every camera, as one pipeline is shared
    group = build_group(
        cams,
        {name: shared for name in scores},
        source_factories={
            name: (lambda s=s: ListSource(marker_bundles(s))) for name, s in scores.items()
        },
    )
    for d in group.daemons:
        d.outputs.append(collectors[d.camera])
    return group, shared


def test_each_camera_runs_its_own_loop_and_events_carry_its_name() -> None:
    scores = {"door": [0.9] * 30, "kiosk": [0.1] * 20, "lobby": [0.9] * 15 + [0.05] * 15}
    collectors = {name: Collector() for name in scores}
    group, shared = group_for(scores, collectors)
    threads_seen: set[str] = set()
    original = shared.analyze

    def analyze(bundle: FrameBundle) -> Any:
        threads_seen.add(threading.current_thread().name)
        return original(bundle)

    shared.analyze = analyze  # type: ignore[method-assign]
    summaries = group.run()

    assert threads_seen == {"cam-door", "cam-kiosk", "cam-lobby"}
    assert shared.calls == 80  # one shared analyser saw every frame of every camera
    for name, c in collectors.items():
        assert len(c.frames) == len(scores[name])
        assert {e["camera"] for e in c.frames + c.decisions} == {name}
        assert summaries[name].frames_processed == len(scores[name])
        assert summaries[name].error is None
    assert [d["decision"] for d in collectors["door"].decisions] == ["live"]
    assert [d["decision"] for d in collectors["kiosk"].decisions] == ["spoof"]
    assert [d["decision"] for d in collectors["lobby"].decisions] == ["live", "spoof"]

    text = (
        group.metrics.registry.get_sample_value(
            "liveness_daemon_frames_processed_total", {"camera": "kiosk"}
        ),
        group.metrics.registry.get_sample_value(
            "liveness_daemon_decisions_total", {"camera": "lobby", "decision": "spoof"}
        ),
        group.metrics.registry.get_sample_value(
            "liveness_daemon_decisions_total", {"camera": "door", "decision": "spoof"}
        ),
    )
    assert text == (20.0, 1.0, 0.0)


def test_a_failing_camera_does_not_stop_the_others() -> None:
    collectors = {"ok": Collector(), "broken": Collector()}
    group, _ = group_for({"ok": [0.9] * 25, "broken": [0.9] * 5}, collectors)
    broken = group.camera("broken")

    def explode(event: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    broken.process = explode  # type: ignore[assignment,method-assign]
    summaries = group.run()
    assert summaries["ok"].frames_processed == 25
    assert [d["decision"] for d in collectors["ok"].decisions] == ["live"]
    assert summaries["broken"].error == "daemon loop crashed (see log)"


def test_one_http_server_for_all_cameras() -> None:
    stop = threading.Event()

    class Endless(FrameSource):
        kind = "endless"
        live = True

        def __init__(self, score: float) -> None:
            super().__init__(None)
            self.bundle = marker_bundles([score])[0]

        def _open(self) -> None:
            pass

        def _read(self, timeout: float | None) -> FrameBundle | None:
            time.sleep(0.02)
            return None if stop.is_set() else self.bundle

        def _close(self) -> None:
            pass

    cams = parse_cameras(
        {"http": {"port": 0}, "cameras": [{"name": n, "source": "camera:0"} for n in ("a", "b")]}
    )
    group = build_group(
        cams,
        {"a": MarkerAnalyzer(), "b": MarkerAnalyzer()},
        source_factories={"a": lambda: Endless(0.9), "b": lambda: Endless(0.1)},
    )
    for d in group.daemons:
        d.outputs.clear()  # no stdout noise
    url = group.start_http()
    assert url is not None
    runner = threading.Thread(target=group.run)
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and httpx.get(url + "/readyz").status_code != 200:
            time.sleep(0.05)
        ready = httpx.get(url + "/readyz").json()
        assert ready["ready"] is True and set(ready["cameras"]) == {"a", "b"}
        while time.monotonic() < deadline and not all(
            httpx.get(f"{url}/cameras/{n}/status").json().get("faces") for n in ("a", "b")
        ):
            time.sleep(0.05)
        a = httpx.get(url + "/cameras/a/status").json()
        b = httpx.get(url + "/cameras/b/status").json()
        assert a["camera"] == "a" and b["camera"] == "b"
        assert a["faces"][0]["frame_decision"] == "live"
        assert b["faces"][0]["frame_decision"] == "spoof"
        jpeg = httpx.get(url + "/cameras/b/preview.jpg")
        assert jpeg.status_code == 200 and jpeg.content[:2] == b"\xff\xd8"
        page = httpx.get(url + "/").text
        assert 'href="cameras/a/"' in page and 'href="cameras/b/"' in page
        metrics = httpx.get(url + "/metrics").text
        for n in ("a", "b"):
            assert f'liveness_daemon_ready{{camera="{n}"}} 1.0' in metrics
            assert f'liveness_daemon_fps{{camera="{n}",stage="processed"}}' in metrics
    finally:
        stop.set()
        group.stop("test over")
        runner.join(10)
    assert not runner.is_alive()


# -- the command -------------------------------------------------------------------------
def run_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", "daemon", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )


def test_cli_bad_file_is_exit_2_naming_camera_and_field(tmp_path: Path) -> None:
    cfg = tmp_path / "cams.yaml"
    cfg.write_text("cameras:\n  - name: door\n    source: {type: recording}\n")
    r = run_cli("--config", str(cfg), "--no-http")
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert "camera 'door': source.path: Field required" in r.stderr
    assert "--config" in r.stderr


def test_cli_config_excludes_per_camera_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "cams.yaml"
    cfg.write_text("cameras:\n  - name: door\n    source: camera:0\n")
    r = run_cli("--config", str(cfg), "--source", "camera:0")
    assert r.returncode == 2 and "either --source or --config" in r.stderr
    r = run_cli("--config", str(cfg), "--window", "5", "--operating-point", "eer")
    assert r.returncode == 2
    assert "--operating-point, --window cannot be combined with --config" in r.stderr
    r = run_cli("--no-http")
    assert r.returncode == 2 and "--source URI (one camera) or --config FILE" in r.stderr


def write_folder(root: Path, n: int) -> Path:
    """A folder source of ``n`` RGB frames without a face (the bundled model says no_face)."""
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        image = rng.integers(0, 60, (96, 128, 3), dtype=np.uint8)
        cv2.imwrite(str(root / f"f{i:03d}_rgb.png"), image)
    return root


def test_cli_runs_every_camera_of_the_file_with_the_bundled_model(tmp_path: Path) -> None:
    a = write_folder(tmp_path / "a", 4)
    b = write_folder(tmp_path / "b", 6)
    events = tmp_path / "b.jsonl"
    cfg = tmp_path / "cams.yaml"
    cfg.write_text(
        "cameras:\n"
        f"  - {{name: gate, source: 'folder:{a}', outputs: [stdout]}}\n"
        f"  - {{name: lab, source: 'folder:{b}', outputs: ['jsonl:{events}'],"
        " operating_point: apcer1}\n"
    )
    r = run_cli("--config", str(cfg), "--no-http")
    assert r.returncode == 0, r.stderr[-3000:]
    stdout_events = [json.loads(line) for line in r.stdout.splitlines()]
    assert [e["camera"] for e in stdout_events] == ["gate"] * 4
    lab = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["camera"] for e in lab] == ["lab"] * 6
    assert all("no_face" in e["reasons"] for e in stdout_events + lab)
    assert r.stderr.count("model flexlive") == 1  # one model loaded, shared by both cameras

    cfg.write_text(f"cameras:\n  - {{name: gate, source: 'folder:{a}', operating_point: eer2}}\n")
    r = run_cli("--config", str(cfg), "--no-http")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "camera 'gate': operating_point: unknown operating point 'eer2'" in r.stderr
