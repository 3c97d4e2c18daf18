"""The capture thread: source → bounded queue, with reconnects and a stall watchdog.

The thread owns the source. It opens it (retrying with exponential back-off), reads
bundles into the queue and reopens it whenever it fails (:class:`SourceError`), stalls
(no frame for ``stall_timeout_s``; live sources only — a file with a gap is reported
stalled and waited for, since reopening would replay it from the start) or — with
``on_end="reopen"`` — ends. A live source
never waits for the consumer: the queue drops its oldest frame. A non-live source
(recording, video, folder played as fast as possible) is read only as fast as the
consumer analyses, so no frame of a file is lost.

State changes (connected / stalled / reconnecting / ended / failed) are reported through
``on_state`` so the daemon can turn unready and log clearly.

A file (a source that is not ``live``) played with ``on_end="stop"`` is opened once: if it
cannot be opened or fails while being read, reopening would only fail again or replay it
from the start, so capture ends in state ``failed`` with the reason in :attr:`failure`
(the daemon then stops and ``liveness daemon`` exits 1). With ``on_end="reopen"`` it is
retried with back-off like a lost camera.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sensors.base import FrameSource, SourceEnded, SourceError
from sensors.bundle import FrameBundle
from sensors.frame_queue import DropOldestQueue, QueueClosed
from service.daemon.metrics import DaemonMetrics

log = logging.getLogger(__name__)


@dataclass
class CapturedFrame:
    bundle: FrameBundle
    captured_at: float  # time.monotonic() when read from the source
    sequence: int  # frames read since the daemon started, across reconnects
    generation: int  # increments on every (re)open: tracks do not survive a reopen


class CaptureWorker:
    def __init__(
        self,
        source_factory: Callable[[], FrameSource],
        queue: DropOldestQueue[CapturedFrame],
        metrics: DaemonMetrics,
        *,
        stall_timeout_s: float = 2.0,
        reconnect_initial_s: float = 0.5,
        reconnect_max_s: float = 30.0,
        on_end: str = "stop",
        on_state: Callable[[str, str], None] | None = None,
        thread_name: str = "capture",
    ) -> None:
        self.source_factory = source_factory
        self.thread_name = thread_name
        self.queue = queue
        self.metrics = metrics
        self.stall_timeout_s = stall_timeout_s
        self.reconnect_initial_s = reconnect_initial_s
        self.reconnect_max_s = reconnect_max_s
        self.on_end = on_end
        self.on_state = on_state or (lambda state, detail: None)
        self.state = "starting"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sequence = 0
        self.generation = 0
        self.reconnects = 0
        self.last_frame_at: float | None = None
        self.finished = threading.Event()  # the thread has exited (ended or stopped)
        self.failure: str | None = None  # why a file source was given up (see module doc)
        self._last_error = ""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("capture thread did not stop within %.1fs", timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _set_state(self, state: str, detail: str = "") -> None:
        self.state = state
        self.on_state(state, detail)

    def _run(self) -> None:
        delay = self.reconnect_initial_s
        first = True
        try:
            while not self._stop.is_set():
                if not first:
                    self.metrics.reconnects.inc()
                    self.reconnects += 1
                    self._set_state("reconnecting", f"reopening in {delay:.1f}s")
                    log.warning("source: reopening in %.1fs", delay)
                    if self._stop.wait(delay):
                        break
                    delay = min(delay * 2, self.reconnect_max_s)
                first = False
                source: FrameSource | None = None
                try:
                    source = self.source_factory()
                    source.open()
                except Exception as exc:  # SourceError, or a bug: either way, retry later
                    self.metrics.source_errors.labels("open").inc()
                    if isinstance(exc, SourceError) and self._gives_up(source):
                        self._fail(f"cannot open: {exc}")
                        break
                    self._set_state("disconnected", str(exc))
                    if isinstance(exc, SourceError):
                        log.error("source: cannot open: %s", exc)
                    else:
                        log.exception("source: unexpected error while opening")
                    continue
                self.generation += 1
                try:
                    outcome = self._pump(source)
                except Exception as exc:
                    # FrameSource.read already turns adapter errors into SourceError; this
                    # catches the rest of the pump (a source overriding read(), the queue,
                    # the state callback): a bug there must not kill capture either.
                    log.exception("source: unexpected error while reading")
                    self.metrics.source_errors.labels("crash").inc()
                    self._set_state("disconnected", f"unexpected error: {exc}")
                    outcome = "failed"
                finally:
                    source.close()
                if outcome == "source-error" and self._gives_up(source):
                    self._fail(f"failed while reading: {self._last_error}")
                    break
                if outcome == "delivered":
                    delay = self.reconnect_initial_s  # it worked for a while: start over
                if outcome == "ended" and self.on_end == "stop":
                    self._set_state("ended", "source finished")
                    break
        finally:
            self.queue.close()
            self.finished.set()

    def _gives_up(self, source: FrameSource | None) -> bool:
        """A file that will not play with on_end=stop is not retried (module docstring)."""
        return source is not None and not source.live and self.on_end == "stop"

    def _fail(self, reason: str) -> None:
        self.failure = reason
        log.error("source: %s; not retried (a file with --on-end stop)", reason)
        self._set_state("failed", reason)

    def _pump(self, source: FrameSource) -> str:
        """Read until stop/failure; return 'stopped', 'ended', 'failed', 'delivered' or
        'source-error' (a SourceError from a file, see :meth:`_gives_up`)."""
        delivered = False
        self._set_state("connected", source.description)
        last = time.monotonic()  # the last frame, or the moment the source opened
        while not self._stop.is_set():
            try:
                bundle = source.read(timeout=min(self.stall_timeout_s, 0.5))
            except SourceEnded as exc:
                log.info("source: %s", exc)
                self.metrics.source_errors.labels("ended").inc()
                return "ended"
            except SourceError as exc:
                self.metrics.source_errors.labels("read").inc()
                if self._gives_up(source):
                    self._last_error = str(exc)
                    return "source-error"
                log.error("source failed: %s", exc)
                self._set_state("disconnected", str(exc))
                return "delivered" if delivered else "failed"
            now = time.monotonic()
            if bundle is None:
                if now - last >= self.stall_timeout_s and self.state != "stalled":
                    msg = f"no frame for {now - last:.1f}s from {source.description}"
                    log.error("source stalled: %s", msg)
                    self.metrics.source_errors.labels("stall").inc()
                    self._set_state("stalled", msg)
                    if source.live:
                        return "delivered" if delivered else "failed"
                    # A file with a gap is not broken, and reopening it would replay it
                    # from the start: stay unready and wait for its frames to resume.
                continue
            last = now
            if self.state != "connected":
                if self.state == "stalled":
                    log.info("source: frames resumed from %s", source.description)
                self._set_state("connected", source.description)
            self.last_frame_at = now
            item = CapturedFrame(bundle, now, self.sequence, self.generation)
            self.sequence += 1
            self.metrics.frames_captured.inc()
            self.metrics.rate_in.mark(now)
            try:
                if source.live:
                    if self.queue.put(item) is not None:
                        self.metrics.frames_dropped.labels("queue_full").inc()
                elif not self._put_waiting(item):
                    return "stopped"
            except QueueClosed:
                return "stopped"
            delivered = True
        return "stopped"

    def _put_waiting(self, item: CapturedFrame) -> bool:
        """Back-pressure for files: wait for room instead of dropping. False when stopping."""
        while not self._stop.is_set():
            if self.queue.put_wait(item, timeout=0.1):
                return True
        return False
