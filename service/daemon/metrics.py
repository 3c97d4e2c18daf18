"""The daemon's Prometheus metrics, all prefixed ``liveness_daemon_``, in their own registry.

Every series carries a ``camera`` label, so one process running several cameras (one
:class:`~service.daemon.runner.LivenessDaemon` each) exposes them side by side on one
``/metrics``: :class:`DaemonMetrics` is one camera's view of the shared families, and
:meth:`DaemonMetrics.for_camera` gives another camera's view of the same registry.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)

#: the camera name of a daemon started without one (``liveness daemon --source …``)
DEFAULT_CAMERA = "default"


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


class _Families:
    """The metric families of one registry, each labelled by ``camera`` first."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = r = registry
        self.views: list[DaemonMetrics] = []
        self.lock = threading.Lock()
        p = "liveness_daemon_"
        cam = ["camera"]
        self.frames_captured = Counter(
            p + "frames_captured_total", "Frames read from the source", cam, registry=r
        )
        self.frames_processed = Counter(
            p + "frames_processed_total", "Frames analysed", cam, registry=r
        )
        self.frames_dropped = Counter(
            p + "frames_dropped_total",
            "Frames dropped before analysis",
            [*cam, "reason"],
            registry=r,
        )
        self.fps = Gauge(
            p + "fps", "Frames per second over the last 5 s", [*cam, "stage"], registry=r
        )
        self.latency = Histogram(
            p + "frame_latency_seconds",
            "Capture to decision, per processed frame",
            cam,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.analysis_time = Histogram(
            p + "analysis_seconds",
            "Pipeline time per frame",
            cam,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.reconnects = Counter(p + "reconnects_total", "Source reopen attempts", cam, registry=r)
        self.source_errors = Counter(
            p + "source_errors_total", "Source failures", [*cam, "kind"], registry=r
        )
        self.decisions = Counter(
            p + "decisions_total", "Track decision changes", [*cam, "decision"], registry=r
        )
        self.faces = Counter(p + "faces_total", "Faces analysed", cam, registry=r)
        self.tracks = Gauge(p + "tracks", "Face tracks alive", cam, registry=r)
        self.ready = Gauge(p + "ready", "1 when the camera is ready", cam, registry=r)
        self.queue_depth = Gauge(p + "queue_depth", "Frames waiting for analysis", cam, registry=r)
        self.output_dropped = Counter(
            p + "output_events_dropped_total",
            "Events an output dropped",
            [*cam, "output"],
            registry=r,
        )
        self.output_retries = Counter(
            p + "output_retries_total", "Failed deliveries retried", [*cam, "output"], registry=r
        )
        self.analysis_errors = Counter(
            p + "analysis_errors_total", "Frames the pipeline failed on", cam, registry=r
        )


class _CameraFamily:
    """A labelled family with the camera label already filled in: ``.labels(rest…)``."""

    def __init__(self, family: Any, camera: str) -> None:
        self._family = family
        self._camera = camera

    def labels(self, *values: str) -> Any:
        return self._family.labels(self._camera, *values)


class DaemonMetrics:
    """One camera's metrics (``camera`` label set), in ``registry`` or a new one."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        camera: str = DEFAULT_CAMERA,
        _families: _Families | None = None,
    ) -> None:
        f = _families or _Families(registry or CollectorRegistry())
        self._families = f
        self.registry = f.registry
        self.camera = c = camera
        self.frames_captured = f.frames_captured.labels(c)
        self.frames_processed = f.frames_processed.labels(c)
        self.frames_dropped = _CameraFamily(f.frames_dropped, c)
        self.fps = _CameraFamily(f.fps, c)
        self.latency = f.latency.labels(c)
        self.analysis_time = f.analysis_time.labels(c)
        self.reconnects = f.reconnects.labels(c)
        self.source_errors = _CameraFamily(f.source_errors, c)
        self.decisions = _CameraFamily(f.decisions, c)
        self.faces = f.faces.labels(c)
        self.tracks = f.tracks.labels(c)
        self.ready = f.ready.labels(c)
        self.queue_depth = f.queue_depth.labels(c)
        self.output_dropped = _CameraFamily(f.output_dropped, c)
        self.output_retries = _CameraFamily(f.output_retries, c)
        self.analysis_errors = f.analysis_errors.labels(c)
        self.rate_in = RateMeter()
        self.rate_processed = RateMeter()
        for d in ("live", "spoof", "uncertain"):
            self.decisions.labels(d)
        for reason in ("queue_full", "invalid"):
            self.frames_dropped.labels(reason)
        with f.lock:
            f.views.append(self)

    def for_camera(self, camera: str) -> DaemonMetrics:
        """Another camera's view of the same registry (one ``/metrics`` for the process)."""
        with self._families.lock:
            if any(v.camera == camera for v in self._families.views):
                raise ValueError(f"camera {camera!r} already has metrics in this registry")
        return DaemonMetrics(camera=camera, _families=self._families)

    def refresh_rates(self) -> None:
        """Update the ``fps`` gauges of every camera of this registry."""
        with self._families.lock:
            views = list(self._families.views)
        for view in views:
            view.fps.labels("in").set(view.rate_in.rate())
            view.fps.labels("processed").set(view.rate_processed.rate())
