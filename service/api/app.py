"""The app factory: ``create_app(settings, engine=None, pipeline=None)``.

Nothing heavy happens at import or in the factory. The lifespan loads the models (the
default one unless an engine or pipeline was given, and those of ``LIVENESS_MODELS``)
into a :class:`~service.model_registry.ModelRegistry`, then warms them in the
background: ``/healthz`` answers at once, ``/readyz`` and ``POST /liveness`` answer 503
until every model is warmed. With ``LIVENESS_MODEL_RELOAD_S`` a background task polls
the model files and swaps changed ones in (hot reload).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from service import __version__
from service.admission import AdmissionControl
from service.api.auth import Authenticator
from service.api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from service.api.problems import install_problem_handlers
from service.api.routes import router
from service.engine import InferenceEngine, ModelLoadError
from service.metrics import Metrics, worker_exited
from service.model_registry import RELOAD_RESTORED, ModelRegistry, ServedModel
from service.pipeline import LivenessPipeline
from service.policy import ModalityPolicy
from service.settings import Settings, analysis_slots, load_settings

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Multi-sensor (RGB / depth / IR) face liveness — presentation attack detection with one
flexible-modal model. `score` is the probability of **bona fide**; the decision is taken
at a calibrated operating point, with an `uncertain` band and reason codes. Errors are
RFC 7807 problem documents naming the field. See docs/api.md.
"""


async def _warm(app: FastAPI) -> None:
    state = app.state
    registry: ModelRegistry = state.models
    try:
        for engine in registry.engines():
            await run_in_threadpool(engine.warmup)
    except Exception as exc:
        state.ready_detail = f"model warm-up failed: {exc}"
        logger.exception("model warm-up failed; the service stays unready")
        return
    try:
        for stage in registry.stages():
            await run_in_threadpool(stage.warmup)
        state.face_ready = True
    except Exception as exc:
        state.face_ready = False
        logger.error(
            "face stage warm-up failed; full-frame requests get 503, cropped ones are served",
            extra={"error": str(exc)},
        )
    state.ready = True
    state.ready_detail = ""
    state.metrics.ready.set(1)
    logger.info("ready", extra={"face_stage": state.face_ready, "models": registry.names()})


async def _poll_reloads(registry: ModelRegistry, interval_s: float) -> None:
    """Hot reload: look for changed model files every ``interval_s`` seconds."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await run_in_threadpool(registry.check_reloads)
        except Exception:  # the poller must outlive any one bad pass
            logger.exception("model reload check failed")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = app.state
    settings: Settings = state.settings
    metrics: Metrics = state.metrics

    def on_reload(served: ServedModel, outcome: str) -> None:
        if outcome != RELOAD_RESTORED:
            metrics.model_reloads.labels(served.name, outcome).inc()
        metrics.model_reload_failing.labels(served.name).set(1 if served.reload_error else 0)
        if served.default:
            state.pipeline = served.pipeline
            state.engine = served.engine
            metrics.set_model(served.engine.info)

    try:
        registry = await run_in_threadpool(
            partial(
                ModelRegistry.load,
                settings,
                default=state.pipeline or state.engine,
                on_reload=on_reload,
            )
        )
    except ModelLoadError as exc:
        # Said in one line before the server's own report of the failed start-up.
        logger.error("a model failed to load; not starting", extra={"error": str(exc)})
        raise
    state.models = registry
    state.pipeline = registry.get()
    state.engine = state.pipeline.engine
    metrics.set_model(state.engine.info)
    for served in registry.models():
        metrics.model_reload_failing.labels(served.name).set(0)

    def on_change(active: int, waiting: int) -> None:
        state.metrics.in_flight.set(active)
        state.metrics.queued.set(waiting)

    state.admission = AdmissionControl(
        analysis_slots(settings),
        settings.max_queue,
        settings.queue_timeout_s,
        settings.retry_after_s,
        on_change=on_change,
        wait_ratio=settings.queue_wait_ratio,
        on_shed=lambda reason: state.metrics.shed.labels(reason).inc(),
        on_admit=state.metrics.queue_wait.observe,
    )
    tasks = [asyncio.create_task(_warm(app))]
    if settings.model_reload_s > 0:
        tasks.append(asyncio.create_task(_poll_reloads(registry, settings.model_reload_s)))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        state.ready = False
        state.metrics.ready.set(0)
        worker_exited(os.getpid())
        registry.close()


def create_app(
    settings: Settings | None = None,
    engine: InferenceEngine | None = None,
    pipeline: LivenessPipeline | None = None,
) -> FastAPI:
    """Build the ASGI app; collaborators go on ``app.state`` (tests inject their own)."""
    settings = settings or load_settings()
    # Same FastAPI app, but /docs and /redoc load their assets from the installed
    # package instead of a CDN, so the docs page works where only the service is reachable.
    app = FastAPIOffline(
        title="FlexLive liveness API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    metrics = Metrics()
    state = app.state
    state.settings = settings
    state.metrics = metrics
    state.auth = Authenticator.from_settings(settings, metrics)  # SettingsError on bad keys
    state.policy = ModalityPolicy.from_settings(settings)
    state.engine = engine if engine is not None else (pipeline.engine if pipeline else None)
    state.pipeline = pipeline
    state.models = None  # the ModelRegistry, built by the lifespan
    state.admission = None
    state.ready = False
    state.face_ready = False
    state.ready_detail = "the model is loading"
    install_problem_handlers(app)
    app.include_router(router)
    # Added last = outermost: the request context wraps the body limit.
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_upload_bytes,
        timeout_s=settings.body_timeout_s,
        metrics=metrics,
    )
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory service.api.app:app_from_env`` (multi-worker)."""
    from service.logging_setup import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_json)
    return create_app(settings)
