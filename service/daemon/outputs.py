"""Where daemon events go: ``stdout``, ``jsonl:PATH``, ``webhook:URL``, ``mqtt://HOST``
(:mod:`service.daemon.mqtt`).

Two event kinds (schema in docs/daemon.md):

- ``frame`` — one per processed frame, with a ``faces`` list (track id, box, aggregated
  score, decision, reasons…); written by ``stdout`` and ``jsonl`` outputs.
- ``decision`` — one per change of a track's decision; POSTed by the ``webhook`` output
  (and counted in metrics).

The webhook output never blocks the daemon: events go into a bounded buffer (oldest
dropped and counted when full) that a sender thread POSTs in order, retrying a failed
POST with exponential back-off (``backoff_initial_s`` doubling to ``backoff_max_s``). On
close every output flushes, the webhook for at most ``flush_timeout_s``: closing wakes the
sender for an immediate retry, later retries keep the back-off, and a retry that could
not start before the flush deadline is not announced. Every "retrying in N s" log line
is the wait that follows it.

A ``jsonl:PATH`` output is opened when it is parsed, so a path that cannot be written
(its directory missing or a file, the path a directory, no permission) is refused before
the daemon starts, with :class:`OutputSpecError` naming the path. Directories are never
created: a typo in a path must not turn into a new directory tree.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections import deque
from pathlib import Path
from typing import IO, Any

from service.daemon.metrics import DEFAULT_CAMERA

log = logging.getLogger(__name__)


class OutputSpecError(ValueError):
    pass


OUTPUT_FORMS = (
    "stdout, jsonl:PATH, webhook:http(s)://HOST/PATH or mqtt[s]://[USER:PASSWORD@]HOST[:PORT]"
)


def dumps(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False, default=float)


class Output(ABC):
    name: str = "output"

    def start(self) -> None:  # noqa: B027 - optional hook
        """Called once before the first event."""

    def frame(self, event: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """One processed frame."""

    def decision(self, event: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """A track's decision changed."""

    @abstractmethod
    def close(self, timeout: float) -> None:
        """Flush and release; may wait up to ``timeout`` seconds."""


class StreamOutput(Output):
    """Frame events as JSON lines on a text stream."""

    def __init__(self, stream: IO[str], name: str) -> None:
        self.stream = stream
        self.name = name
        self.lines = 0

    def frame(self, event: dict[str, Any]) -> None:
        self.stream.write(dumps(event) + "\n")
        self.lines += 1

    def close(self, timeout: float) -> None:
        self.stream.flush()


class StdoutOutput(StreamOutput):
    def __init__(self) -> None:
        super().__init__(sys.stdout, "stdout")


class JsonlOutput(StreamOutput):
    """Frame events appended to a JSONL file, flushed per line (a crash loses nothing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        name = f"jsonl:{path}"
        parent = path.parent
        if parent.exists() and not parent.is_dir():
            raise OutputSpecError(f"{name}: {parent} is a file, not a directory")
        if not parent.exists():
            raise OutputSpecError(
                f"{name}: directory {parent} does not exist; create it first "
                "(the daemon does not create directories)"
            )
        if path.is_dir():
            raise OutputSpecError(f"{name}: {path} is a directory; name a file in it")
        try:
            stream = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise OutputSpecError(
                f"{name}: cannot open for appending: {exc.strerror or exc}"
            ) from None
        super().__init__(stream, name)

    def frame(self, event: dict[str, Any]) -> None:
        super().frame(event)
        self.stream.flush()

    def close(self, timeout: float) -> None:
        if not self.stream.closed:
            self.stream.flush()
            self.stream.close()


class WebhookOutput(Output):
    """POST each decision event as JSON to ``url``, in order, with retries and back-off."""

    def __init__(
        self,
        url: str,
        *,
        buffer_size: int = 1000,
        timeout_s: float = 5.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        on_drop: Any = None,
        on_retry: Any = None,
    ) -> None:
        self.url = url
        self.name = f"webhook:{url}"
        self.timeout_s = timeout_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._buffer: deque[dict[str, Any]] = deque()
        self.buffer_size = buffer_size
        self._cond = threading.Condition()
        self._closing = False
        self._close_deadline = float("inf")  # when close() stops waiting for the sender
        self._abandoned = False  # close() gave up waiting: the sender stops at once
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.dropped = 0
        self.failures = 0
        self._on_drop = on_drop
        self._on_retry = on_retry

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="webhook-sender", daemon=True)
        self._thread.start()

    def decision(self, event: dict[str, Any]) -> None:
        with self._cond:
            if len(self._buffer) >= self.buffer_size:
                self._buffer.popleft()
                self.dropped += 1
                if self._on_drop:
                    self._on_drop()
                log.warning("%s: buffer full, dropped the oldest event", self.name)
            self._buffer.append(event)
            self._cond.notify()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._buffer)

    def _post(self, event: dict[str, Any]) -> None:
        request = urllib.request.Request(
            self.url,
            data=dumps(event).encode("utf-8"),
            headers={"Content-Type": "application/json", "User-Agent": "flexlive-daemon"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            if not 200 <= response.status < 300:
                raise urllib.error.HTTPError(
                    self.url, response.status, "non-2xx", response.headers, None
                )

    def _run(self) -> None:
        delay = self.backoff_initial_s
        while True:
            with self._cond:
                while not self._buffer and not self._closing:
                    self._cond.wait()
                if not self._buffer or self._abandoned:
                    return  # closing and drained, or shut down without delivering
                event = self._buffer[0]
            try:
                self._post(event)
            except Exception as exc:  # network errors of every kind: retry after a pause
                self.failures += 1
                if self._on_retry:
                    self._on_retry()
                if not self._pause_before_retry(exc, delay):
                    return  # no retry fits before the shutdown deadline: close() reports it
                delay = min(delay * 2, self.backoff_max_s)
                continue
            delay = self.backoff_initial_s
            with self._cond:
                if self._buffer and self._buffer[0] is event:
                    self._buffer.popleft()
                self.sent += 1

    def _pause_before_retry(self, exc: Exception, delay: float) -> bool:
        """Wait ``delay`` before the next attempt, logging the wait that really follows;
        False when shutting down and the next attempt would come after the deadline."""
        with self._cond:
            if self._closing:
                left = self._close_deadline - time.monotonic()
                if left <= delay:
                    log.warning(
                        "%s: POST failed (%s); no retry before the shutdown deadline "
                        "(next in %.1fs, %.1fs left)",
                        self.name,
                        exc,
                        delay,
                        max(left, 0.0),
                    )
                    return False
            log.warning("%s: POST failed (%s); retrying in %.1fs", self.name, exc, delay)
            was_closing = self._closing
            self._cond.wait(delay)
            if self._closing and not was_closing and not self._abandoned:
                # close() woke us early: one immediate try before the flush deadline
                log.info(
                    "%s: shutting down, retrying now (%d pending)", self.name, len(self._buffer)
                )
            return not self._abandoned

    def close(self, timeout: float) -> None:
        with self._cond:
            self._close_deadline = time.monotonic() + timeout
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                with self._cond:
                    self._abandoned = True
                    self._cond.notify_all()
            if self.pending:
                log.error("%s: %d event(s) not delivered before shutdown", self.name, self.pending)


def parse_output(spec: str, *, camera: str = DEFAULT_CAMERA, **webhook_options: Any) -> Output:
    """``stdout`` | ``jsonl:PATH`` | ``webhook:URL`` | ``mqtt[s]://HOST…`` → an :class:`Output`.

    ``camera`` names the camera whose events it carries (MQTT topics)."""
    kind, _, value = spec.partition(":")
    if kind == "stdout" and not value:
        return StdoutOutput()
    if kind == "jsonl" and value:
        return JsonlOutput(Path(value))
    if kind == "webhook" and value.startswith(("http://", "https://")):
        return WebhookOutput(value, **webhook_options)
    if kind in ("mqtt", "mqtts") and value:
        from service.daemon.mqtt import MqttOutput, paho_missing, parse_mqtt_uri

        config = parse_mqtt_uri(spec)
        missing = paho_missing()
        if missing:
            raise OutputSpecError(missing)
        return MqttOutput(config, camera)
    raise OutputSpecError(f"bad output {spec!r}: expected {OUTPUT_FORMS}")


def check_output_spec(spec: str) -> str:
    """Check the form of ``spec`` without opening anything (config files are validated
    before any file is opened or any connection made); returns it unchanged."""
    kind, _, value = spec.partition(":")
    if (kind == "stdout" and not value) or (kind == "jsonl" and value):
        return spec
    if kind == "webhook" and value.startswith(("http://", "https://")):
        return spec
    if kind in ("mqtt", "mqtts") and value:
        from service.daemon.mqtt import parse_mqtt_uri

        parse_mqtt_uri(spec)
        return spec
    raise OutputSpecError(f"bad output {spec!r}: expected {OUTPUT_FORMS}")


def close_all(outputs: list[Output], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for output in outputs:
        try:
            output.close(max(0.0, deadline - time.monotonic()))
        except Exception:
            log.exception("error closing output %s", output.name)
