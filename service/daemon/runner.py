"""The daemon itself: wires capture, analysis, tracking, outputs, metrics and HTTP.

Threads: *capture* (source → queue), *http* (uvicorn), *webhook-sender* (per webhook
output); analysis, tracking and outputs run in the thread that calls :meth:`run` (the main
thread under the CLI, so SIGTERM/SIGINT handlers run there and simply ask it to stop).

Lifecycle: HTTP up (unready) → model warmed → capture started → ready while frames
arrive → on stop (signal, ``max_frames``, end of a finite source): capture stopped,
outputs flushed, HTTP down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sensors.base import FrameSource
from sensors.frame_queue import DropOldestQueue, QueueClosed
from service.daemon.capture import CapturedFrame, CaptureWorker
from service.daemon.config import DaemonConfig
from service.daemon.http import HttpServer, create_daemon_app
from service.daemon.metrics import DEFAULT_CAMERA, DaemonMetrics
from service.daemon.outputs import Output, close_all
from service.daemon.preview import PreviewState, modality_health
from service.daemon.tracker import FaceTracker, TrackUpdate
from service.daemon.types import FrameAnalysis, FrameAnalyzer
from service.decision import Reason

log = logging.getLogger(__name__)

REASON_ANALYSIS_FAILED = Reason.ANALYSIS_FAILED.value


@dataclass
class DaemonSummary:
    frames_processed: int = 0
    frames_captured: int = 0
    frames_dropped: int = 0
    decision_changes: int = 0
    reconnects: int = 0
    final_decisions: dict[int, str] = field(default_factory=dict)  # track id → decision
    stop_reason: str = ""
    #: why the source was given up (a file that cannot be read, --on-end stop); None when
    #: the daemon stopped normally. The CLI exits 1 with it.
    error: str | None = None


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def face_json(u: TrackUpdate) -> dict[str, Any]:
    return {
        "track_id": u.track_id,
        "box": [round(v, 1) for v in u.box],
        "score": u.score,
        "frame_score": u.frame_score,
        "decision": u.decision,
        "frame_decision": u.frame_decision,
        "changed": u.changed,
        "frames": u.frames,
        "reasons": u.reasons,
    }


class LivenessDaemon:
    def __init__(
        self,
        source_factory: Callable[[], FrameSource],
        analyzer: FrameAnalyzer,
        outputs: list[Output],
        config: DaemonConfig | None = None,
        *,
        source_name: str = "",
        camera: str = DEFAULT_CAMERA,
        metrics: DaemonMetrics | None = None,
    ) -> None:
        self.config = config or DaemonConfig()
        self.analyzer = analyzer
        self.outputs = outputs
        self.source_name = source_name
        #: the camera's name in events, metrics (label ``camera``) and MQTT topics
        self.camera = camera
        self.metrics = metrics or DaemonMetrics(camera=camera)
        self.queue: DropOldestQueue[CapturedFrame] = DropOldestQueue(self.config.queue_size)
        self.tracker = FaceTracker(self.config.tracker, analyzer.operating_point)
        self.preview = PreviewState(max_width=self.config.preview_max_width)
        self.capture = CaptureWorker(
            source_factory,
            self.queue,
            self.metrics,
            stall_timeout_s=self.config.stall_timeout_s,
            reconnect_initial_s=self.config.reconnect_initial_s,
            reconnect_max_s=self.config.reconnect_max_s,
            on_end=self.config.on_end,
            on_state=self._on_source_state,
            thread_name=f"capture-{camera}",
        )
        self.http: HttpServer | None = None
        self.summary = DaemonSummary()
        self._stop = threading.Event()
        self._running = False
        self._warmed = False
        self._source_detail = "not started"
        self._generation = 0
        self._was_ready = False
        self._ready_lock = threading.Lock()
        for output in outputs:  # webhook and MQTT outputs count what they drop or retry
            name = output.name
            if hasattr(output, "_on_drop") and output._on_drop is None:
                output._on_drop = lambda n=name: self.metrics.output_dropped.labels(n).inc()
            if hasattr(output, "_on_retry") and output._on_retry is None:
                output._on_retry = lambda n=name: self.metrics.output_retries.labels(n).inc()

    # -- health ------------------------------------------------------------------------
    def health(self) -> tuple[bool, str]:
        if not self._running:
            return False, "daemon loop not running"
        return True, f"source {self.capture.state}"

    def readiness(self) -> tuple[bool, str]:
        if not self._running:
            return False, "daemon loop not running"
        if not self._warmed:
            return False, "model warming up"
        if self.capture.state != "connected":
            return False, f"source {self.capture.state}: {self._source_detail}"
        last = self.capture.last_frame_at
        if last is None:
            return False, "waiting for the first frame"
        age = time.monotonic() - last
        if age > self.config.stall_timeout_s:
            return False, f"no frame for {age:.1f}s"
        return True, f"source connected: {self._source_detail}"

    def _on_source_state(self, state: str, detail: str) -> None:
        # the capture thread has logged the cause; readiness changes are logged once below
        self._source_detail = detail
        self._update_readiness()

    def _update_readiness(self) -> None:
        ready, detail = self.readiness()
        self.metrics.ready.set(1.0 if ready else 0.0)
        with self._ready_lock:
            changed = ready != self._was_ready
            self._was_ready = ready
        if changed and ready:
            log.info("ready: %s", detail)
        elif changed:
            log.warning("not ready: %s", detail)

    # -- lifecycle ---------------------------------------------------------------------
    def stop(self, reason: str = "stop requested") -> None:
        if not self._stop.is_set():
            log.info("stopping: %s", reason)
            self.summary.stop_reason = self.summary.stop_reason or reason
            self._stop.set()

    def start_http(self) -> str | None:
        """Start the HTTP server (done by :meth:`run`; callable earlier to learn the URL)."""
        if self.config.http_port is None or self.http is not None:
            return self.http.url if self.http else None
        app = create_daemon_app(self.preview, self.metrics, self.health, self.readiness)
        self.http = HttpServer(app, self.config.http_host, self.config.http_port)
        self.http.start()
        return self.http.url

    def run(self) -> DaemonSummary:
        self._running = True
        try:
            self.start_http()
            for output in self.outputs:
                output.start()
            t0 = time.perf_counter()
            self.analyzer.warmup()
            self._warmed = True
            log.info("model warmed in %.0f ms", (time.perf_counter() - t0) * 1000)
            self.capture.start()
            self._loop()
        finally:
            self.capture.stop()
            close_all(self.outputs, self.config.flush_timeout_s)
            self._running = False
            self.metrics.ready.set(0.0)
            if self.http is not None:
                self.http.stop()
            s = self.summary
            s.frames_captured = self.capture.sequence
            s.frames_dropped = self.queue.dropped
            s.reconnects = self.capture.reconnects
            s.error = self.capture.failure
            s.final_decisions = {tid: t.decision for tid, t in self.tracker.tracks.items()}
            log.info(
                "daemon stopped (%s): %d frames processed, %d dropped, %d decision changes",
                s.stop_reason or "source ended",
                s.frames_processed,
                s.frames_dropped,
                s.decision_changes,
            )
        return self.summary

    def _loop(self) -> None:
        max_frames = self.config.max_frames
        while not self._stop.is_set():
            try:
                item = self.queue.get(timeout=0.2)
            except QueueClosed:
                failure = self.capture.failure
                ended = f"source failed: {failure}" if failure else "source ended"
                self.summary.stop_reason = self.summary.stop_reason or ended
                return
            self.metrics.queue_depth.set(len(self.queue))
            self._update_readiness()
            if item is None:
                continue
            self.process(item)
            if max_frames is not None and self.summary.frames_processed >= max_frames:
                self.stop(f"max frames ({max_frames}) reached")

    # -- one frame ---------------------------------------------------------------------
    def process(self, item: CapturedFrame) -> dict[str, Any]:
        """Analyse one captured frame, update tracks, emit events; returns the frame event."""
        if item.generation != self._generation:
            if self._generation:
                log.info("source reopened: tracks reset")
            self.tracker.reset()
            self._generation = item.generation
        bundle = item.bundle
        t0 = time.perf_counter()
        try:
            analysis = self.analyzer.analyze(bundle)
        except Exception as exc:  # one bad frame must not stop the daemon
            log.warning("frame %d not analysed: %s", item.sequence, exc)
            self.metrics.analysis_errors.inc()
            analysis = FrameAnalysis(faces=[], reasons=[REASON_ANALYSIS_FAILED])
        analysis_s = time.perf_counter() - t0
        updates = self.tracker.update(analysis.faces)
        latency_s = time.monotonic() - item.captured_at
        now = _now_iso()

        event: dict[str, Any] = {
            "type": "frame",
            "camera": self.camera,
            "seq": item.sequence,
            "frame_index": bundle.frame_index,
            "source": bundle.source or self.source_name,
            "time": now,
            "latency_ms": round(latency_s * 1000, 2),
            "analysis_ms": round(analysis_s * 1000, 2),
            "timings_ms": analysis.timings_ms,
            "modalities_received": analysis.modalities_received or list(bundle.present),
            "modalities_used": analysis.modalities_used,
            "reasons": analysis.reasons,
            "faces": [face_json(u) for u in updates],
        }
        for output in self.outputs:
            try:
                output.frame(event)
            except Exception:
                log.exception("output %s failed on a frame event", output.name)
        for u in updates:
            if not u.changed:
                continue
            self.summary.decision_changes += 1
            self.metrics.decisions.labels(u.decision).inc()
            log.info(
                "track %d: %s → %s (score %s, %d frames)",
                u.track_id,
                u.previous_decision,
                u.decision,
                u.score,
                u.frames,
            )
            decision_event = {
                "type": "decision",
                "camera": self.camera,
                "track_id": u.track_id,
                "decision": u.decision,
                "previous_decision": u.previous_decision,
                "score": u.score,
                "frames": u.frames,
                "box": [round(v, 1) for v in u.box],
                "reasons": u.reasons,
                "seq": item.sequence,
                "frame_index": bundle.frame_index,
                "source": event["source"],
                "time": now,
            }
            for output in self.outputs:
                try:
                    output.decision(decision_event)
                except Exception:
                    log.exception("output %s failed on a decision event", output.name)
            self.preview.add_decision(decision_event, bundle)

        self.summary.frames_processed += 1
        self.metrics.frames_processed.inc()
        self.metrics.rate_processed.mark()
        self.metrics.latency.observe(latency_s)
        self.metrics.analysis_time.observe(analysis_s)
        self.metrics.faces.inc(len(updates))
        self.metrics.tracks.set(len(self.tracker.tracks))
        self.preview.update(
            item.sequence,
            bundle,
            updates,
            {
                "seq": item.sequence,
                "camera": self.camera,
                "source": event["source"],
                "time": now,
                "faces": event["faces"],
                "reasons": analysis.reasons,
                "modalities_used": analysis.modalities_used,
                "modalities": modality_health(
                    event["modalities_received"], analysis.modalities_used, analysis.reasons
                ),
            },
        )
        return event
