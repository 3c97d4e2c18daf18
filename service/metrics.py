"""Prometheus metrics of the serving runtime (every name prefixed ``liveness_``).

One :class:`Metrics` object per app, on its own registry, so several apps (tests, one
process per worker) never collide and ``/metrics`` exposes exactly this service.

With several worker processes (``liveness serve --workers N``) each worker counts in its
own process, and a scrape lands on one of them: ``serve`` then points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start, prometheus-client
keeps every worker's values there, and ``/metrics`` answers with the whole service —
counters and histograms summed, the in-progress gauges summed over live workers,
``liveness_ready`` the minimum (1 only when every live worker is ready).
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from service.engine import ModelInfo

CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Set (by ``liveness serve --workers N``) when several worker processes share the metrics.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The shared metrics directory when this process is one of several workers."""
    return os.environ.get(MULTIPROC_ENV) or None


#: Latency buckets in seconds: sub-millisecond stages up to slow full-frame requests.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1,
    0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
#: Body read buckets in seconds: loopback uploads up to bodies cut at a long deadline.
BODY_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """The service's collectors, registered on a private registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "liveness_requests",
            "HTTP requests answered, by endpoint (route template), method and status code.",
            ["endpoint", "method", "status"],
            registry=r,
        )
        self.request_latency = Histogram(
            "liveness_request_duration_seconds",
            "Wall time of HTTP requests from first byte to response, by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stage_latency = Histogram(
            "liveness_stage_duration_seconds",
            "Wall time of one pipeline stage (decode, face, inference, rgb_expert, total) per "
            "request.",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "liveness_decisions",
            "Per-face decisions at the operating point (live, spoof, uncertain).",
            ["decision"],
            registry=r,
        )
        self.component_scores = Histogram(
            "liveness_component_score",
            "Bona fide score per face and component: 'flexmodal', 'rgb_expert', and 'fused' "
            "when the two were fused (a drift of one component shows here first).",
            ["component"],
            buckets=(0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99),
            registry=r,
        )
        self.faces_per_request = Histogram(
            "liveness_faces_per_request",
            "Faces found per analysed request.",
            buckets=(0, 1, 2, 3, 5, 10, 20, 100),
            registry=r,
        )
        self.modality_subsets = Counter(
            "liveness_modality_subsets",
            "Analysed requests by the modality subset received and the subset used "
            "(after modality health).",
            ["received", "used"],
            registry=r,
        )
        self.reasons = Counter(
            "liveness_reasons",
            "Reason codes reported (frame level and per face).",
            ["reason"],
            registry=r,
        )
        self.ood_agreements = Counter(
            "liveness_ood_agreements",
            "Faces out of distribution for the flexible-modal model that were decided because "
            "the fused score, the model alone and the RGB expert alone all said live "
            "(LIVENESS_RGB_EXPERT_OOD_AGREEMENT).",
            registry=r,
        )
        self.in_flight = Gauge(
            "liveness_in_flight_requests",
            "Liveness requests being analysed now.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.queued = Gauge(
            "liveness_queued_requests",
            "Liveness requests waiting for an analysis slot.",
            registry=r,
            multiprocess_mode="livesum",
        )
        # Slow clients and overload (docs/security.md): what pushes the service shows here.
        self.shed = Counter(
            "liveness_shed_requests",
            "Liveness requests refused with 503 overloaded by admission control, by reason: "
            "queue_full, wait_budget (expected wait over LIVENESS_QUEUE_WAIT_RATIO x the "
            "analysis time), wait_timeout (waited that long without a slot).",
            ["reason"],
            registry=r,
        )
        self.queue_wait = Histogram(
            "liveness_queue_wait_seconds",
            "Time an admitted liveness request waited for an analysis slot.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.body_read = Histogram(
            "liveness_body_read_seconds",
            "Time from the end of a request's headers to the end of its body (complete "
            "bodies only; timed-out and abandoned ones are counted apart).",
            buckets=BODY_BUCKETS,
            registry=r,
        )
        self.body_timeouts = Counter(
            "liveness_body_timeouts",
            "Requests answered 408 because the body did not arrive within LIVENESS_BODY_TIMEOUT_S.",
            registry=r,
        )
        self.client_disconnects = Counter(
            "liveness_client_disconnects",
            "Requests whose client disconnected before the body was complete (status label "
            "499 in liveness_requests_total; not a server error).",
            ["endpoint"],
            registry=r,
        )
        self.receiving = Gauge(
            "liveness_receiving_requests",
            "Requests whose body is being received now (no analysis slot held yet).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.model_info = Gauge(
            "liveness_model_info",
            "The loaded model (value 1), identified by its labels.",
            ["name", "version", "sha256", "providers"],
            registry=r,
            multiprocess_mode="livemax",
        )
        # Several models by name (LIVENESS_MODELS) and hot reload (LIVENESS_MODEL_RELOAD_S).
        self.model_requests = Counter(
            "liveness_model_requests",
            "Liveness requests analysed, by the served model that answered.",
            ["model"],
            registry=r,
        )
        self.model_reloads = Counter(
            "liveness_model_reloads",
            "Model file changes handled by hot reload, by model and outcome: 'swapped' (the "
            "new file serves), 'rejected' (it failed to load or warm; the old one serves).",
            ["model", "outcome"],
            registry=r,
        )
        self.model_reload_failing = Gauge(
            "liveness_model_reload_failing",
            "1 while a model's file on disk is one that hot reload rejected (the model "
            "served is older than its file), else 0.",
            ["model"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.ready = Gauge(
            "liveness_ready",
            "1 when the model is loaded and warmed, else 0.",
            registry=r,
            multiprocess_mode="livemin",
        )
        # API keys and the deployment policy (key *names* as labels, never keys).
        self.auth_failures = Counter(
            "liveness_auth_failures",
            "Requests refused with 401 for a missing or invalid API key, by reason.",
            ["reason"],
            registry=r,
        )
        self.key_decisions = Counter(
            "liveness_key_decisions",
            "Per-face decisions by API key name (live, spoof, uncertain).",
            ["key", "decision"],
            registry=r,
        )
        self.key_lockouts = Counter(
            "liveness_key_lockouts",
            "Lockout events: an API key locked after repeated spoof decisions.",
            ["key"],
            registry=r,
        )
        self.key_locked_refusals = Counter(
            "liveness_key_locked_refusals",
            "Requests refused with 429 because their API key was locked.",
            ["key"],
            registry=r,
        )
        self.policy_refusals = Counter(
            "liveness_policy_refusals",
            "Requests refused by the deployment policy, by problem kind "
            "(modality-not-accepted, operating-point-not-allowed).",
            ["kind"],
            registry=r,
        )

    def set_model(self, info: ModelInfo) -> None:
        self.model_info.clear()
        self.model_info.labels(
            name=info.name,
            version=info.version,
            sha256=info.sha256,
            providers=",".join(info.providers),
        ).set(1)

    def exposition(self) -> bytes:
        """The text a scrape gets: this app's registry, or every worker's values when
        several worker processes share a metrics directory."""
        if multiprocess_dir() is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        return generate_latest(merged)


def worker_exited(pid: int) -> None:
    """Drop a stopped worker's live gauges from the shared directory (no-op otherwise)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)
