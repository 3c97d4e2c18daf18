"""Daemon faults that must end in a message, not a traceback or an endless loop.

- ``--output jsonl:PATH`` whose directory is a file, or does not exist: exit 2 and a
  message naming the path, before the model is loaded; no directory is created.
- A file source that cannot be read, with ``--on-end stop``: the daemon stops with an
  error and exit 1 instead of retrying forever (``--on-end reopen`` still retries).
- The webhook's "retrying in N s" is the wait that really follows, also while shutting
  down, and the retries keep the documented back-off.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from daemon_testing import MarkerAnalyzer, ScriptedSource

from service.daemon.config import DaemonConfig
from service.daemon.outputs import JsonlOutput, OutputSpecError, WebhookOutput
from service.daemon.runner import LivenessDaemon


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", "daemon", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


# -- jsonl output paths ----------------------------------------------------------------------
def test_an_output_under_a_file_is_exit_2_naming_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "events"
    blocker.write_text("I am a file")
    target = blocker / "out.jsonl"
    r = run_cli("--source", "camera:0", "--no-http", "--output", f"jsonl:{target}")
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert f"{blocker} is a file, not a directory" in r.stderr
    assert "--output" in r.stderr


def test_a_missing_directory_is_refused_not_created(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "events.jsonl"
    r = run_cli("--source", "camera:0", "--no-http", "--output", f"jsonl:{target}")
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert f"directory {target.parent} does not exist" in r.stderr
    assert not (tmp_path / "no").exists()


def test_a_directory_or_unwritable_path_is_an_output_spec_error(tmp_path: Path) -> None:
    with pytest.raises(OutputSpecError, match="is a directory"):
        JsonlOutput(tmp_path)
    out = JsonlOutput(tmp_path / "ok.jsonl")  # an existing directory: fine
    out.frame({"type": "frame"})
    out.close(1)
    assert json.loads((tmp_path / "ok.jsonl").read_text()) == {"type": "frame"}
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(OutputSpecError, match="cannot open for appending"):
            JsonlOutput(locked / "e.jsonl")


# -- unreadable files ----------------------------------------------------------------------
def daemon_on(source: Any, on_end: str) -> LivenessDaemon:
    config = DaemonConfig(
        http_port=None, on_end=on_end, reconnect_initial_s=0.02, reconnect_max_s=0.05
    )
    return LivenessDaemon(source, MarkerAnalyzer(), [], config)


def test_a_file_that_cannot_be_opened_stops_the_daemon_with_on_end_stop() -> None:
    opens = itertools.count()

    def factory() -> ScriptedSource:
        next(opens)
        return ScriptedSource(itertools.repeat("o"), live=False)  # refuses every open

    daemon = daemon_on(factory, "stop")
    t0 = time.monotonic()
    summary = daemon.run()
    assert time.monotonic() - t0 < 5
    assert next(opens) == 1  # opened once, not retried
    assert summary.error is not None and "device not found" in summary.error
    assert summary.stop_reason.startswith("source failed")
    assert daemon.capture.state == "failed"
    assert daemon.metrics.source_errors.labels("open")._value.get() == 1


def test_with_on_end_reopen_the_same_file_is_retried() -> None:
    daemon = daemon_on(lambda: ScriptedSource(itertools.repeat("o"), live=False), "reopen")
    thread = threading.Thread(target=daemon.run)
    thread.start()
    time.sleep(0.5)
    daemon.stop()
    thread.join(10)
    assert daemon.summary.reconnects >= 2 and daemon.summary.error is None


def test_a_file_failing_mid_read_is_not_replayed_with_on_end_stop() -> None:
    script = iter("." + "fff" + "x" + "." + "fff")  # 3 frames, a read error; a replay
    daemon = daemon_on(lambda: ScriptedSource(script, live=False), "stop")
    summary = daemon.run()
    assert summary.frames_processed == 3 and summary.reconnects == 0
    assert summary.error is not None and "USB transfer failed" in summary.error


def test_cli_stops_on_an_unreadable_recording(tmp_path: Path, test_model_path: Path) -> None:
    pytest.importorskip("pyrealsense2")
    garbage = tmp_path / "broken.db3"
    garbage.write_bytes(os.urandom(4096))
    jsonl = tmp_path / "events.jsonl"
    r = run_cli(
        "--source", f"recording:{garbage}", "--on-end", "stop", "--no-http",
        "--model", str(test_model_path), "--output", f"jsonl:{jsonl}",
        env={"LIVENESS_RGB_EXPERT": "false"},
        timeout=90,
    )  # fmt: skip
    assert r.returncode == 1, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert "not retried (a file with --on-end stop)" in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: source failed: cannot open:") and str(garbage) in last
    assert "reopening" not in r.stderr
    assert jsonl.read_text() == ""


# -- webhook retry messages ------------------------------------------------------------------
class FailingReceiver:
    """Answers 500 to every POST and notes when each arrived."""

    def __init__(self) -> None:
        self.attempts: list[float] = []
        attempts = self.attempts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                attempts.append(time.time())
                self.send_response(500)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_webhook_retry_messages_tell_the_real_wait_also_at_shutdown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="service.daemon.outputs")
    receiver = FailingReceiver()
    hook = WebhookOutput(receiver.url, backoff_initial_s=0.3, backoff_max_s=30, timeout_s=2)
    try:
        hook.start()
        hook.decision({"type": "decision", "n": 1})
        deadline = time.monotonic() + 10
        while len(receiver.attempts) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(receiver.attempts) == 3  # at 0, 0.3 and 0.9 s; now waiting 1.2 s
        time.sleep(0.1)
        t0 = time.monotonic()
        hook.close(timeout=2.0)
        closed_in = time.monotonic() - t0
    finally:
        receiver.close()
    assert closed_in < 3.0
    # the shutdown woke the sender for one immediate retry; the next wait (2.4 s) does not
    # fit in what is left of the 2 s flush timeout, so it is not announced as a retry
    assert len(receiver.attempts) == 4, receiver.attempts
    records = [r for r in caplog.records if r.name == "service.daemon.outputs"]
    messages = [r.getMessage() for r in records]
    assert sum("retrying now" in m for m in messages) == 1
    assert any("no retry before the shutdown deadline (next in 2.4s" in m for m in messages)
    assert any("1 event(s) not delivered" in m for m in messages)
    # every "retrying in N s" is followed by the next attempt N s later (unless woken)
    wakes = [r.created for r in records if "retrying now" in r.getMessage()]
    checked = 0
    for record in records:
        text = record.getMessage()
        if "retrying in" not in text:
            continue
        wait = float(text.rsplit("retrying in ", 1)[1].rstrip("s"))
        later = [a for a in receiver.attempts if a > record.created]
        if not later or any(record.created <= w <= later[0] for w in wakes):
            continue  # the last one: cut short by the shutdown, which said so
        assert abs((later[0] - record.created) - wait) < 0.25, (wait, later[0] - record.created)
        checked += 1
    assert checked == 2  # 0.3 s and 0.6 s
    assert [m.split("retrying in ")[1] for m in messages if "retrying in" in m][:2] == [
        "0.3s",
        "0.6s",
    ]
