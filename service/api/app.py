"""The app factory: ``create_app(settings, engine=None, pipeline=None)``.

Nothing heavy happens at import or in the factory. The lifespan loads the model (unless
an engine was given), builds the face stage and pipeline, then warms them in the
background: ``/healthz`` answers at once, ``/readyz`` and ``POST /liveness`` answer 503
until the model is warmed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from service import __version__
from service.admission import AdmissionControl
from service.api.auth import Authenticator
from service.api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from service.api.problems import install_problem_handlers
from service.api.routes import router
from service.engine import InferenceEngine
from service.metrics import Metrics
from service.pipeline import LivenessPipeline, build_face_stage, load_rgb_expert
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
    pipeline: LivenessPipeline = state.pipeline
    try:
        await run_in_threadpool(pipeline.engine.warmup)
    except Exception as exc:
        state.ready_detail = f"model warm-up failed: {exc}"
        logger.exception("model warm-up failed; the service stays unready")
        return
    try:
        await run_in_threadpool(pipeline.face_stage.warmup)
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
    logger.info("ready", extra={"face_stage": state.face_ready})


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = app.state
    settings: Settings = state.settings
    owns_engine = state.engine is None
    if state.engine is None:
        state.engine = await run_in_threadpool(InferenceEngine.load, settings.model_path, settings)
    engine: InferenceEngine = state.engine
    if state.pipeline is None:
        stage = build_face_stage(settings.face, engine.spec.input_size)
        expert = await run_in_threadpool(load_rgb_expert, settings)
        state.pipeline = LivenessPipeline(engine, stage, settings, expert)
    state.metrics.set_model(engine.info)

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
    warm = asyncio.create_task(_warm(app))
    try:
        yield
    finally:
        warm.cancel()
        state.ready = False
        state.metrics.ready.set(0)
        if owns_engine:
            engine.close()


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
