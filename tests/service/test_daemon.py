"""The camera daemon end to end with a deterministic analyser (no model needed).

Recordings are written with the SDK recorder and replayed through the SDK into the
daemon; ``MarkerAnalyzer`` (tests/service/daemon_testing.py) reads each face's score from its
pixels, so the expected decisions are known. Faults are injected with small sources.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_testing import MarkerAnalyzer, ScriptedSource, marker_bundles

from sensors.base import FrameSource
from sensors.bundle import FrameBundle
from sensors.config import RecordingConfig, create_source
from service.daemon.config import DaemonConfig, TrackerConfig
from service.daemon.outputs import JsonlOutput, Output, WebhookOutput, parse_output
from service.daemon.runner import LivenessDaemon


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("pyrealsense2")
    from sensors.recorder import write_recording

    root = tmp_path_factory.mktemp("daemon-rec")
    return {
        "live": write_recording(root / "live.db3", marker_bundles([0.9] * 30), fps=30),
        "spoof": write_recording(root / "spoof.db3", marker_bundles([0.1] * 30), fps=30),
        # a bona fide start, then the score collapses (e.g. a replay slid in front)
        "turn": write_recording(
            root / "turn.db3", marker_bundles([0.9] * 15 + [0.05] * 15), fps=30
        ),
    }


def daemon_for(
    source: Callable[[], FrameSource] | Path,
    outputs: list[Output],
    analyzer: MarkerAnalyzer | None = None,
    **config: Any,
) -> LivenessDaemon:
    config.setdefault("http_port", None)
    config.setdefault("reconnect_initial_s", 0.05)
    config.setdefault("reconnect_max_s", 0.2)
    config.setdefault("tracker", TrackerConfig(min_live_frames=8, min_spoof_frames=4))
    factory = (
        (lambda: create_source(RecordingConfig(path=source)))
        if isinstance(source, Path)
        else source
    )
    return LivenessDaemon(factory, analyzer or MarkerAnalyzer(), outputs, DaemonConfig(**config))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


class Collector(Output):
    name = "collector"

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.decisions: list[dict[str, Any]] = []
        self.closed = False

    def frame(self, event: dict[str, Any]) -> None:
        self.frames.append(event)

    def decision(self, event: dict[str, Any]) -> None:
        self.decisions.append(event)

    def close(self, timeout: float) -> None:
        self.closed = True


@pytest.mark.parametrize(
    ("name", "final", "changes"),
    [
        ("live", "live", ["live"]),
        ("spoof", "spoof", ["spoof"]),
        ("turn", "spoof", ["live", "spoof"]),
    ],
)
def test_recording_replay_ends_with_the_expected_decision(
    recordings: dict[str, Path], tmp_path: Path, name: str, final: str, changes: list[str]
) -> None:
    jsonl = tmp_path / "events.jsonl"
    collector = Collector()
    daemon = daemon_for(recordings[name], [JsonlOutput(jsonl), collector])
    summary = daemon.run()

    events = read_jsonl(jsonl)
    assert len(events) == 30 == summary.frames_processed  # one event per recorded frame
    assert summary.frames_dropped == 0 and summary.stop_reason == "source ended"
    assert [e["seq"] for e in events] == list(range(30))
    last = events[-1]
    assert last["type"] == "frame" and len(last["faces"]) == 1
    face = last["faces"][0]
    assert face["decision"] == final and face["track_id"] == 1
    assert set(face) >= {"track_id", "box", "score", "decision", "reasons"}
    assert last["modalities_received"] == ["rgb", "depth", "ir"]
    assert [d["decision"] for d in collector.decisions] == changes
    assert summary.final_decisions == {1: final}
    assert collector.closed
    # live is only reached after min_live_frames consistent frames
    if final == "live":
        first_live = next(e["seq"] for e in events if e["faces"][0]["decision"] == "live")
        assert first_live == 7


def test_max_frames_stops_early(recordings: dict[str, Path]) -> None:
    collector = Collector()
    summary = daemon_for(recordings["live"], [collector], max_frames=5).run()
    assert summary.frames_processed == 5 == len(collector.frames)
    assert "max frames" in summary.stop_reason


# -- faults ------------------------------------------------------------------------------
def test_unplug_stall_and_refused_reopen_recover_without_crashing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # opens: ok, refused, refused, ok, ok — reads: 5 frames + USB error | 5 frames + stall |
    # 5 frames + end of script
    script = iter("." + "fffff" + "x" + "oo" + "." + "fffff" + "s" + "." + "fffff")
    collector = Collector()
    daemon = daemon_for(
        # a camera (live) whose frames the analyser keeps up with: nothing is dropped
        lambda: ScriptedSource(script, live=True, period=0.01),
        [collector],
        stall_timeout_s=0.2,
        queue_size=32,
    )
    summary = daemon.run()
    assert summary.frames_processed == 15
    assert summary.reconnects == 4
    errors = daemon.metrics.source_errors
    assert errors.labels("read")._value.get() == 1
    assert errors.labels("open")._value.get() == 2
    assert errors.labels("stall")._value.get() == 1
    assert "USB transfer failed" in caplog.text and "stalled" in caplog.text
    # every reopen starts fresh tracks: a face is not carried across a reconnection
    ids = [e["faces"][0]["track_id"] for e in collector.frames]
    assert len(set(ids)) == 3


def test_a_gap_in_a_recording_is_waited_for_not_replayed(tmp_path: Path) -> None:
    """Frames stop arriving (a gap in a real-time recording): unready, then resumed."""
    from sensors.recorder import RecordingWriter, StreamSpec

    bundles = marker_bundles([0.9] * 16)
    specs = [StreamSpec(m, 160, 120, f) for m, f in (("rgb", "rgb8"), ("depth", "z16"))]
    with RecordingWriter(tmp_path / "gap.db3", specs, fps=30, pace=True) as writer:
        for i, b in enumerate(bundles):
            gap_ms = 800.0 if i >= 8 else 0.0  # no frame for 0.8 s after the 8th
            writer.write(timestamp_ms=i * 1000 / 30 + gap_ms, rgb=b.rgb, depth=b.depth)
    collector = Collector()
    states: list[str] = []
    daemon = daemon_for(
        lambda: create_source(RecordingConfig(path=tmp_path / "gap.db3", real_time=True)),
        [collector],
        stall_timeout_s=0.3,
    )
    on_state = daemon.capture.on_state
    daemon.capture.on_state = lambda state, detail: (states.append(state), on_state(state, detail))
    summary = daemon.run()
    assert summary.frames_processed == 16 and summary.reconnects == 0
    assert [e["seq"] for e in collector.frames] == list(range(16))
    assert states == ["connected", "stalled", "connected", "ended"]


def test_readiness_turns_unready_while_the_source_is_gone() -> None:
    stop = threading.Event()

    def endless() -> Iterator[str]:
        yield from "." + "f" * 30 + "x"  # open, 30 frames, the camera is unplugged
        while not stop.is_set():
            yield "o"  # the camera stays unplugged

    script = endless()
    daemon = daemon_for(lambda: ScriptedSource(script, period=0.01), [Collector()])
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        seen_ready = False
        while time.monotonic() < deadline and not seen_ready:
            seen_ready = daemon.readiness()[0]
            time.sleep(0.005)
        assert seen_ready
        while time.monotonic() < deadline and daemon.readiness()[0]:
            time.sleep(0.01)
        ok, detail = daemon.readiness()
        assert not ok and ("disconnected" in detail or "reconnecting" in detail)
        assert daemon.health()[0]  # alive, just not ready
    finally:
        stop.set()
        daemon.stop()
        thread.join(10)
    assert not thread.is_alive()


def test_truncated_recording_does_not_crash_the_daemon(
    recordings: dict[str, Path], tmp_path: Path
) -> None:
    data = recordings["live"].read_bytes()
    broken = tmp_path / "truncated.db3"
    broken.write_bytes(data[: len(data) // 2])
    collector = Collector()
    daemon = daemon_for(broken, [collector], on_end="reopen")
    thread = threading.Thread(target=daemon.run)
    thread.start()
    time.sleep(1.0)
    daemon.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert daemon.metrics.reconnects._value.get() >= 1
    assert len(collector.frames) < 30 * 20  # whatever was readable, never invented


def test_a_live_source_faster_than_analysis_drops_the_oldest() -> None:
    script = iter("f" * 200)
    daemon = daemon_for(
        lambda: ScriptedSource(script, live=True, period=0.001),
        [Collector()],
        analyzer=MarkerAnalyzer(delay_s=0.01),
        queue_size=2,
    )
    summary = daemon.run()
    assert summary.frames_dropped > 0
    assert summary.frames_captured == 199  # the first step of the script opens the source
    assert summary.frames_processed + summary.frames_dropped == summary.frames_captured
    assert daemon.metrics.frames_dropped.labels("queue_full")._value.get() == summary.frames_dropped


def test_an_analyser_failure_is_one_bad_frame() -> None:
    class Flaky(MarkerAnalyzer):
        def analyze(self, bundle: FrameBundle):  # type: ignore[no-untyped-def]
            if self.calls == 3:
                self.calls += 1
                raise RuntimeError("onnxruntime exploded")
            return super().analyze(bundle)

    collector = Collector()
    summary = daemon_for(
        lambda: ScriptedSource(iter("." + "f" * 10), live=False), [collector], analyzer=Flaky()
    ).run()
    assert summary.frames_processed == 10
    assert collector.frames[3]["reasons"] == ["analysis_failed"]


# -- webhook ----------------------------------------------------------------------------
class Receiver:
    """A local webhook receiver that answers 500 to the first ``fail`` POSTs."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.attempts = 0
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.attempts += 1
                if receiver.attempts <= receiver.fail:
                    self.send_response(500)
                    self.end_headers()
                    return
                receiver.received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_webhook_retries_until_the_receiver_recovers(recordings: dict[str, Path]) -> None:
    receiver = Receiver(fail=3)
    try:
        hook = WebhookOutput(receiver.url, backoff_initial_s=0.05, backoff_max_s=0.2)
        daemon = daemon_for(recordings["turn"], [hook], flush_timeout_s=10)
        daemon.run()
        assert [e["decision"] for e in receiver.received] == ["live", "spoof"]
        assert receiver.received[0]["type"] == "decision"
        assert receiver.received[1]["previous_decision"] == "live"
        assert receiver.attempts == 3 + 2 and hook.failures == 3 and hook.sent == 2
        assert daemon.metrics.output_retries.labels(hook.name)._value.get() == 3
    finally:
        receiver.close()


def test_webhook_buffer_is_bounded_while_the_receiver_is_down() -> None:
    hook = WebhookOutput(
        "http://127.0.0.1:9/unreachable", buffer_size=3, backoff_initial_s=10, timeout_s=0.2
    )
    hook.start()
    for i in range(10):
        hook.decision({"type": "decision", "n": i})
    assert hook.pending <= 3 and hook.dropped >= 6
    t0 = time.monotonic()
    hook.close(timeout=0.5)  # gives up after the flush timeout, never hangs
    assert time.monotonic() - t0 < 2


def test_output_specs() -> None:
    assert parse_output("stdout").name == "stdout"
    assert parse_output("webhook:https://x.example/hook").name == "webhook:https://x.example/hook"
    for bad in ("jsonl:", "webhook:ftp://x", "kafka:topic", "stdout:x"):
        with pytest.raises(ValueError, match="bad output"):
            parse_output(bad)


# -- HTTP --------------------------------------------------------------------------------
def test_health_readiness_metrics_and_preview_over_http() -> None:
    stop = threading.Event()

    def endless() -> Iterator[str]:
        while not stop.is_set():
            yield "f"

    script = endless()
    daemon = daemon_for(lambda: ScriptedSource(script, period=0.02), [Collector()], http_port=0)
    url = daemon.start_http()
    assert url is not None
    assert httpx.get(url + "/readyz").status_code == 503  # not warmed, nothing read yet
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and httpx.get(url + "/readyz").status_code != 200:
            time.sleep(0.05)
        assert httpx.get(url + "/readyz").json()["ready"] is True
        assert httpx.get(url + "/healthz").status_code == 200
        metrics = httpx.get(url + "/metrics").text
        for name in (
            "liveness_daemon_frames_captured_total",
            "liveness_daemon_frames_processed_total",
            "liveness_daemon_frames_dropped_total",
            "liveness_daemon_frame_latency_seconds_bucket",
            "liveness_daemon_reconnects_total",
            'liveness_daemon_decisions_total{camera="default",decision="live"}',
            'liveness_daemon_fps{camera="default",stage="processed"}',
        ):
            assert name in metrics
        jpeg = httpx.get(url + "/preview.jpg")
        assert jpeg.status_code == 200 and jpeg.content[:2] == b"\xff\xd8"
        with httpx.stream("GET", url + "/preview.mjpg", timeout=5) as stream:
            assert stream.headers["content-type"].startswith("multipart/x-mixed-replace")
            head = b""
            for chunk in stream.iter_bytes():
                head += chunk
                if b"\xff\xd8" in head:
                    break
            assert head.startswith(b"--frame\r\nContent-Type: image/jpeg")
        status = httpx.get(url + "/status").json()
        assert status["faces"] and status["faces"][0]["track_id"] == 1
        assert "FlexLive live preview" in httpx.get(url + "/").text
    finally:
        stop.set()
        daemon.stop()
        thread.join(10)
    assert not thread.is_alive()


def test_an_adapter_bug_is_retried_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    calls = {"n": 0}

    def factory() -> FrameSource:
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyError("bug in a factory")
        return ScriptedSource(iter("." + "f" * 5), live=False)

    summary = daemon_for(factory, [Collector()]).run()
    assert summary.frames_processed == 5 and summary.reconnects == 1
    assert "unexpected error while opening" in caplog.text


def test_not_ready_until_the_model_is_warmed() -> None:
    warming = threading.Event()
    release = threading.Event()

    class SlowWarmup(MarkerAnalyzer):
        def warmup(self) -> None:
            warming.set()
            release.wait(10)
            super().warmup()

    analyzer = SlowWarmup()
    daemon = daemon_for(lambda: ScriptedSource(iter("." + "f" * 5), live=False), [], analyzer)
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        assert warming.wait(10)
        assert daemon.readiness() == (False, "model warming up")
        assert daemon.capture.state == "starting"  # capture waits for the warm model
    finally:
        release.set()
        thread.join(10)
    assert analyzer.warmed and daemon.summary.frames_processed == 5
