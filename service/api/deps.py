"""Dependencies: the app's collaborators (on ``app.state``) as ``Annotated`` aliases.

All are ``async``: they only read ``app.state``, and FastAPI would run a plain ``def``
dependency on a worker thread (a thread hop per dependency per request)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.admission import AdmissionControl
from service.api.auth import Caller, metrics_api_key, optional_api_key, require_api_key
from service.engine import InferenceEngine
from service.errors import NotReadyError
from service.metrics import Metrics
from service.model_registry import ModelRegistry
from service.pipeline import LivenessPipeline
from service.settings import Settings


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


async def get_engine(request: Request) -> InferenceEngine:
    engine: InferenceEngine | None = request.app.state.engine
    if engine is None:
        raise NotReadyError("the model is not loaded yet")
    return engine


async def get_ready_pipeline(request: Request) -> LivenessPipeline:
    """The default model's pipeline, once every model is warmed."""
    return (await get_ready_models(request)).get()


async def get_ready_models(request: Request) -> ModelRegistry:
    """The served models, once every one is warmed."""
    state = request.app.state
    registry: ModelRegistry | None = state.models
    if registry is None or not state.ready:
        raise NotReadyError(state.ready_detail or "the model is still warming up")
    return registry


async def get_models(request: Request) -> ModelRegistry:
    """The served models, as soon as they are loaded (warmed or not)."""
    registry: ModelRegistry | None = request.app.state.models
    if registry is None:
        raise NotReadyError("the model is not loaded yet")
    return registry


async def get_admission(request: Request) -> AdmissionControl:
    admission: AdmissionControl = request.app.state.admission
    return admission


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
EngineDep = Annotated[InferenceEngine, Depends(get_engine)]
PipelineDep = Annotated[LivenessPipeline, Depends(get_ready_pipeline)]
#: Every served model by name, ready to analyse (503 not-ready before).
ReadyModelsDep = Annotated[ModelRegistry, Depends(get_ready_models)]
#: Every served model by name, loaded (for the model cards).
ModelsDep = Annotated[ModelRegistry, Depends(get_models)]
AdmissionDep = Annotated[AdmissionControl, Depends(get_admission)]
#: The caller of POST /liveness: a valid, unlocked API key when keys are configured.
KeyDep = Annotated[Caller, Depends(require_api_key)]
#: The caller of GET /v1/models: anyone; ``trusted`` only with a valid key (or no keys).
OptionalKeyDep = Annotated[Caller, Depends(optional_api_key)]
#: The caller of GET /metrics: keyed only when LIVENESS_METRICS_REQUIRE_KEY is set.
MetricsKeyDep = Annotated[Caller, Depends(metrics_api_key)]
