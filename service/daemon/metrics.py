"""The daemon's Prometheus metrics, all prefixed ``liveness_daemon_``, in their own registry."""

from __future__ import annotations

import threading
import time
from collections import deque

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)


class RateMeter:
    """Events per second over the last ``window_s`` seconds."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def mark(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._times.append(now)
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(now)
            if len(self._times) < 2:
                return 0.0
            span = max(now - self._times[0], 1e-6)
            return len(self._times) / span


class DaemonMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        p = "liveness_daemon_"
        self.frames_captured = Counter(
            p + "frames_captured_total", "Frames read from the source", registry=r
        )
        self.frames_processed = Counter(p + "frames_processed_total", "Frames analysed", registry=r)
        self.frames_dropped = Counter(
            p + "frames_dropped_total", "Frames dropped before analysis", ["reason"], registry=r
        )
        self.fps = Gauge(p + "fps", "Frames per second over the last 5 s", ["stage"], registry=r)
        self.latency = Histogram(
            p + "frame_latency_seconds",
            "Capture to decision, per processed frame",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.analysis_time = Histogram(
            p + "analysis_seconds", "Pipeline time per frame", buckets=LATENCY_BUCKETS, registry=r
        )
        self.reconnects = Counter(p + "reconnects_total", "Source reopen attempts", registry=r)
        self.source_errors = Counter(
            p + "source_errors_total", "Source failures", ["kind"], registry=r
        )
        self.decisions = Counter(
            p + "decisions_total", "Track decision changes", ["decision"], registry=r
        )
        self.faces = Counter(p + "faces_total", "Faces analysed", registry=r)
        self.tracks = Gauge(p + "tracks", "Face tracks alive", registry=r)
        self.ready = Gauge(p + "ready", "1 when the daemon is ready", registry=r)
        self.queue_depth = Gauge(p + "queue_depth", "Frames waiting for analysis", registry=r)
        self.output_dropped = Counter(
            p + "output_events_dropped_total", "Events an output dropped", ["output"], registry=r
        )
        self.output_retries = Counter(
            p + "output_retries_total", "Failed deliveries retried", ["output"], registry=r
        )
        self.analysis_errors = Counter(
            p + "analysis_errors_total", "Frames the pipeline failed on", registry=r
        )
        self.rate_in = RateMeter()
        self.rate_processed = RateMeter()
        for d in ("live", "spoof", "uncertain"):
            self.decisions.labels(d)
        for reason in ("queue_full", "invalid"):
            self.frames_dropped.labels(reason)

    def refresh_rates(self) -> None:
        self.fps.labels("in").set(self.rate_in.rate())
        self.fps.labels("processed").set(self.rate_processed.rate())
