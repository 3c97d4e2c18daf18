"""The daemon's MQTT output against a real broker (Debian's ``mosquitto``, started here).

Every test starts its own mosquitto on a free port with a temporary config, and watches
it with a paho subscriber: decision events arrive on ``<prefix>/<camera>/events`` with
the camera's name and the configured QoS; the retained availability is ``online`` while
the camera runs, ``offline`` after a clean stop, and ``offline`` through the last will
when the process is killed; credentials are honoured; a missing paho-mqtt is one line
naming the extra.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from daemon_testing import ListSource, MarkerAnalyzer, marker_bundles

from service.daemon.cameras import CameraConfigError, build_group, check_packages, parse_cameras
from service.daemon.config import DaemonConfig, TrackerConfig
from service.daemon.outputs import OutputSpecError, parse_output
from service.daemon.runner import LivenessDaemon

mqtt = pytest.importorskip(
    "paho.mqtt.client", reason="paho-mqtt is not installed: pip install -e '.[mqtt]'"
)
from service.daemon.mqtt import MqttConfig, MqttOutput, parse_mqtt_uri  # noqa: E402
from tests.ports import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None
)
needs_broker = pytest.mark.skipif(
    MOSQUITTO is None,
    reason="the Debian package 'mosquitto' (MQTT broker) is not installed: "
    "apt-get install mosquitto (make system-deps does it as root)",
)


# -- a broker and a subscriber ----------------------------------------------------------


@dataclass
class Broker:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path


def start_broker(tmp_path: Path, extra: str = "", port: int | None = None) -> Broker:
    assert MOSQUITTO is not None
    port = port or free_port()
    conf = tmp_path / f"mosquitto-{port}.conf"
    log = tmp_path / f"mosquitto-{port}.log"
    lines = [
        f"listener {port} 127.0.0.1",
        "persistence false",
        # mosquitto started as root drops to user 'mosquitto', who cannot read tmp_path
        f"user {getpass.getuser()}",
        extra or "allow_anonymous true",
    ]
    conf.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(
        [MOSQUITTO, "-c", str(conf)], stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return Broker(port, proc, log)
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"mosquitto did not listen on {port}: {log.read_text()}")


def stop_broker(broker: Broker) -> None:
    broker.proc.terminate()
    try:
        broker.proc.wait(5)
    except subprocess.TimeoutExpired:
        broker.proc.kill()
        broker.proc.wait(5)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = start_broker(tmp_path)
    yield b
    stop_broker(b)


@dataclass
class Message:
    topic: str
    payload: str
    qos: int
    retain: bool


class Subscriber:
    """A paho client subscribed to ``topic`` that records what the broker delivers."""

    def __init__(
        self, port: int, topic: str = "flexlive/#", tls_ca: Path | None = None, **auth: str
    ) -> None:
        self.messages: list[Message] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}"
        )
        if auth:
            self.client.username_pw_set(auth["username"], auth["password"])
        if tls_ca is not None:
            self.client.tls_set(ca_certs=str(tls_ca))
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=2)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("localhost" if tls_ca else "127.0.0.1", port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "subscriber could not subscribe"

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._cond:
            self.messages.append(Message(msg.topic, msg.payload.decode(), msg.qos, msg.retain))
            self._cond.notify_all()

    def on(self, topic: str) -> list[Message]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                assert left > 0, f"timed out; got {self.messages}"
                self._cond.wait(left)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


TRACKER = TrackerConfig(min_live_frames=8, min_spoof_frames=4)


def run_daemon(scores: list[float], output: Any, camera: str) -> LivenessDaemon:
    daemon = LivenessDaemon(
        lambda: ListSource(marker_bundles(scores)),
        MarkerAnalyzer(),
        [output],
        DaemonConfig(tracker=TRACKER, http_port=None),
        camera=camera,
    )
    daemon.run()
    return daemon


# -- through the broker -----------------------------------------------------------------
@needs_broker
def test_cameras_file_publishes_each_camera_on_its_own_topics(broker: Broker) -> None:
    sub = Subscriber(broker.port)
    cams = parse_cameras(
        {
            "http": {"port": None},
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "qos": 1},
            "cameras": [
                {"name": "door", "source": "camera:0", "outputs": [], "tracker": TRACKER},
                {"name": "kiosk", "source": "camera:1", "outputs": [], "tracker": TRACKER},
                {"name": "quiet", "source": "camera:2", "outputs": [], "mqtt": False},
            ],
        }
    )
    scores = {"door": [0.9] * 15 + [0.05] * 15, "kiosk": [0.1] * 12, "quiet": [0.9] * 12}
    shared = MarkerAnalyzer()
    group = build_group(
        cams,
        {name: shared for name in scores},
        source_factories={
            n: (lambda s=s: ListSource(marker_bundles(s))) for n, s in scores.items()
        },
    )
    summaries = group.run()
    assert all(s.error is None for s in summaries.values())
    try:
        sub.wait_for(
            lambda: (
                len(sub.on("flexlive/door/available")) >= 2
                and len(sub.on("flexlive/kiosk/available")) >= 2
            )
        )
        for camera, expected in (("door", ["live", "spoof"]), ("kiosk", ["spoof"])):
            events = sub.on(f"flexlive/{camera}/events")
            payloads = [json.loads(m.payload) for m in events]
            assert [p["decision"] for p in payloads] == expected
            assert {p["camera"] for p in payloads} == {camera}
            assert all(p["type"] == "decision" for p in payloads)
            assert {m.qos for m in events} == {1} and not any(m.retain for m in events)
            assert [m.payload for m in sub.on(f"flexlive/{camera}/available")] == [
                "online",
                "offline",
            ]
        assert not [m for m in sub.messages if "/quiet/" in m.topic]  # mqtt: false
        assert not [m for m in sub.messages if m.topic.endswith("/frames")]  # off by default
    finally:
        sub.close()
    # a client arriving later learns from the retained message that both are offline
    late = Subscriber(broker.port)
    try:
        late.wait_for(lambda: len(late.messages) >= 2)
        time.sleep(0.2)
        assert sorted((m.topic, m.payload, m.retain) for m in late.messages) == [
            ("flexlive/door/available", "offline", True),
            ("flexlive/kiosk/available", "offline", True),
        ]
    finally:
        late.close()


@needs_broker
@pytest.mark.parametrize("qos", [0, 2])
def test_qos_and_frame_events_from_the_output_uri(broker: Broker, qos: int) -> None:
    sub = Subscriber(broker.port, "site1/#")
    output = parse_output(
        f"mqtt://127.0.0.1:{broker.port}?qos={qos}&frames=true&topic_prefix=site1",
        camera="gate",
    )
    assert isinstance(output, MqttOutput)
    daemon = run_daemon([0.9] * 12, output, "gate")
    try:
        sub.wait_for(
            lambda: [m.payload for m in sub.on("site1/gate/available")][-1:] == ["offline"]
        )
        frames = sub.on("site1/gate/frames")
        assert [json.loads(m.payload)["seq"] for m in frames] == list(range(12))
        assert {json.loads(m.payload)["camera"] for m in frames} == {"gate"}
        decisions = sub.on("site1/gate/events")
        assert [json.loads(m.payload)["decision"] for m in decisions] == ["live"]
        # the subscriber asked for QoS 2: what arrives is what the daemon published with
        assert {m.qos for m in frames + decisions + sub.on("site1/gate/available")} == {qos}
        assert output.published == 13 and output.dropped == 0
        assert daemon.summary.frames_processed == 12
    finally:
        sub.close()


@needs_broker
def test_last_will_turns_availability_offline_when_the_process_dies(broker: Broker) -> None:
    script = (
        "import time\n"
        "from service.daemon.mqtt import MqttConfig, MqttOutput\n"
        f"out = MqttOutput(MqttConfig(host='127.0.0.1', port={broker.port}), 'gate')\n"
        "out.start()\n"
        "print('started', flush=True)\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"started"
        sub = Subscriber(broker.port)
        try:
            sub.wait_for(lambda: bool(sub.on("flexlive/gate/available")))
            online = sub.on("flexlive/gate/available")[0]
            assert (online.payload, online.retain) == ("online", True)  # retained
            proc.kill()  # no chance to say goodbye: only the broker's last will can tell
            proc.wait(10)
            sub.wait_for(lambda: len(sub.on("flexlive/gate/available")) == 2)
            assert sub.on("flexlive/gate/available")[1].payload == "offline"
        finally:
            sub.close()
        late = Subscriber(broker.port)
        try:
            late.wait_for(lambda: bool(late.messages))
            assert (late.messages[0].payload, late.messages[0].retain) == ("offline", True)
        finally:
            late.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@needs_broker
def test_credentials(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    pwfile = tmp_path / "passwd"
    subprocess.run([passwd, "-c", "-b", str(pwfile), "camera", "s3cret"], check=True)
    broker = start_broker(tmp_path, f"allow_anonymous false\npassword_file {pwfile}")
    try:
        sub = Subscriber(broker.port, username="camera", password="s3cret")
        try:
            good = MqttConfig(
                host="127.0.0.1", port=broker.port, username="camera", password="s3cret"
            )
            run_daemon([0.9] * 10, MqttOutput(good, "door"), "door")
            sub.wait_for(lambda: len(sub.on("flexlive/door/available")) == 2)
            assert [json.loads(m.payload)["decision"] for m in sub.on("flexlive/door/events")] == [
                "live"
            ]

            bad = MqttConfig(**{**good.model_dump(), "password": "wrong", "connect_wait_s": 1.0})
            with caplog.at_level("WARNING", logger="service.daemon.mqtt"):
                run_daemon([0.9] * 10, MqttOutput(bad, "lobby"), "lobby")
            assert "broker refused the connection" in caplog.text
            assert "s3cret" not in caplog.text and "wrong" not in caplog.text
            time.sleep(0.3)
            assert not [m for m in sub.messages if "/lobby/" in m.topic]
        finally:
            sub.close()
    finally:
        stop_broker(broker)


def make_certificates(root: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for localhost/127.0.0.1 (openssl CLI)."""
    ca_key, ca, key, csr, cert = (root / n for n in ("ca.key", "ca.pem", "s.key", "s.csr", "s.pem"))
    ext = root / "san.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for cmd in (
        ["req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "1", "-subj", "/CN=t-ca"],
        ["req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "1", "-extfile", ext],
    ):  # fmt: skip
        subprocess.run(["openssl", *map(str, cmd)], check=True, capture_output=True)
    return ca, cert, key


@needs_broker
@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ca, cert, key = make_certificates(tmp_path)
    broker = start_broker(
        tmp_path, f"allow_anonymous true\ncafile {ca}\ncertfile {cert}\nkeyfile {key}"
    )
    try:
        sub = Subscriber(broker.port, tls_ca=ca)
        try:
            trusted = parse_output(
                f"mqtts://localhost:{broker.port}?ca_certs={ca}&qos=1", camera="door"
            )
            run_daemon([0.9] * 10, trusted, "door")
            sub.wait_for(lambda: len(sub.on("flexlive/door/available")) == 2)
            events = sub.on("flexlive/door/events")
            assert [json.loads(m.payload)["decision"] for m in events] == ["live"]

            # the system CAs do not know our throw-away CA: no connection, nothing sent
            untrusted = MqttConfig(host="localhost", port=broker.port, tls=True, connect_wait_s=1.0)
            with caplog.at_level("WARNING", logger="service.daemon.mqtt"):
                run_daemon([0.9] * 10, MqttOutput(untrusted, "lobby"), "lobby")
            assert "broker not reached within 1.0s" in caplog.text
            time.sleep(0.3)
            assert not [m for m in sub.messages if "/lobby/" in m.topic]
        finally:
            sub.close()
    finally:
        stop_broker(broker)


def test_qos0_while_the_broker_is_away_is_dropped_and_counted() -> None:
    port = free_port()  # nobody listens here
    output = MqttOutput(MqttConfig(host="127.0.0.1", port=port, qos=0, connect_wait_s=0.2), "door")
    daemon = run_daemon([0.9] * 10, output, "door")
    assert output.dropped == 1 and output.published == 0  # the one decision event
    dropped = daemon.metrics.registry.get_sample_value(
        "liveness_daemon_output_events_dropped_total",
        {"camera": "door", "output": output.name},
    )
    assert dropped == 1.0


# -- configuration ----------------------------------------------------------------------
def test_uri_options_and_errors() -> None:
    c = parse_mqtt_uri(
        "mqtt://cam%40site:p%3Ass@broker.lan:1884?qos=2&frames=true&topic_prefix=a/b"
    )
    assert (c.host, c.effective_port, c.qos, c.frames, c.topic_prefix) == (
        "broker.lan", 1884, 2, True, "a/b",
    )  # fmt: skip
    assert c.username == "cam@site" and c.password is not None
    assert c.password.get_secret_value() == "p:ss"
    assert c.topics("door") == {
        "events": "a/b/door/events",
        "frames": "a/b/door/frames",
        "available": "a/b/door/available",
    }
    tls = parse_mqtt_uri("mqtts://broker.lan")
    assert tls.tls and tls.effective_port == 8883
    with pytest.raises(OutputSpecError, match="qos: Input should be 0, 1 or 2") as info:
        parse_mqtt_uri("mqtt://u:hunter2@h?qos=5")
    assert "hunter2" not in str(info.value)
    with pytest.raises(OutputSpecError, match="colour: Extra inputs are not permitted"):
        parse_mqtt_uri("mqtt://h?colour=red")
    with pytest.raises(OutputSpecError, match="must not contain MQTT wildcards"):
        parse_mqtt_uri("mqtt://h?topic_prefix=a/%2B")
    with pytest.raises(OutputSpecError, match="ca_certs: .* is not a readable file"):
        parse_mqtt_uri("mqtt://h?tls=true&ca_certs=/no/such/ca.pem")


def test_missing_paho_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from service.daemon.command import daemon

    monkeypatch.setitem(sys.modules, "paho", None)  # find_spec → not installed
    hint = "pip install 'flexlive[mqtt]'"
    with pytest.raises(OutputSpecError, match=rf"MQTT output needs paho-mqtt.*{re.escape(hint)}"):
        parse_output("mqtt://localhost")
    cams = parse_cameras(
        {"mqtt": {"host": "localhost"}, "cameras": [{"name": "a", "source": "camera:0"}]}
    )
    with pytest.raises(CameraConfigError, match=re.escape(hint)):
        check_packages(cams)
    result = CliRunner().invoke(
        daemon, ["--source", "camera:0", "--no-http", "--output", "mqtt://localhost"]
    )
    assert result.exit_code == 2
    assert hint in result.output and "Traceback" not in result.output


@needs_broker
def test_cli_config_publishes_and_says_offline_on_sigterm(broker: Broker, tmp_path: Path) -> None:
    """``liveness daemon --config`` as a process, with the bundled model: two looping folder
    cameras publish to the broker and serve one HTTP server; SIGTERM → offline, exit 0."""
    import signal

    import cv2
    import httpx
    import numpy as np

    folders = []
    for name in ("gate", "lab"):
        folder = tmp_path / name
        folder.mkdir()
        for i in range(3):
            image = np.full((96, 128, 3), 40 * i, np.uint8)
            cv2.imwrite(str(folder / f"f{i}_rgb.png"), image)
        folders.append(folder)
    cfg = tmp_path / "cams.yaml"
    cfg.write_text(
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}, qos: 1, frames: true}}\n"
        "cameras:\n"
        f"  - {{name: gate, source: 'folder:{folders[0]}?fps=20', on_end: reopen, outputs: []}}\n"
        f"  - {{name: lab, source: 'folder:{folders[1]}?fps=20', on_end: reopen, outputs: []}}\n"
    )
    sub = Subscriber(broker.port)
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "daemon", "--config", str(cfg), "--port", "0"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(iter(proc.stderr.readline, "")),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    try:
        deadline = time.monotonic() + 90
        url = None
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            found = [m for line in list(lines) if (m := re.search(r"cameras at (\S+)/ ", line))]
            url = found[0].group(1) if found else None
            time.sleep(0.1)
        assert url is not None, "".join(lines)
        sub.wait_for(
            lambda: all(len(sub.on(f"flexlive/{c}/frames")) >= 3 for c in ("gate", "lab")), 60
        )
        ready = httpx.get(url + "/readyz", timeout=5).json()
        assert set(ready["cameras"]) == {"gate", "lab"}
        metrics = httpx.get(url + "/metrics", timeout=5).text
        assert re.search(r'liveness_daemon_frames_processed_total\{camera="lab"\} [1-9]', metrics)
        for camera in ("gate", "lab"):
            frames = [json.loads(m.payload) for m in sub.on(f"flexlive/{camera}/frames")]
            assert {f["camera"] for f in frames} == {camera}
            assert all(f["faces"] == [] for f in frames)  # plain grey images
            assert sub.on(f"flexlive/{camera}/available")[0].payload == "online"
        assert any("[capture-gate]" in line for line in lines)  # logs say which camera
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, "".join(lines[-30:])
        sub.wait_for(
            lambda: all(
                [m.payload for m in sub.on(f"flexlive/{c}/available")][-1:] == ["offline"]
                for c in ("gate", "lab")
            )
        )
        assert any("stopping: signal SIGTERM" in line for line in lines)
    finally:
        sub.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
