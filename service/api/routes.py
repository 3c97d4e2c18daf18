"""HTTP routes: ``POST /liveness``, health, readiness, metrics and the model card."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from models.spec import MODALITIES
from service.api.auth import Authenticator, Caller, metrics_api_key
from service.api.decoding import build_bundle
from service.api.deps import (
    AdmissionDep,
    KeyDep,
    MetricsDep,
    ModelsDep,
    OptionalKeyDep,
    ReadyModelsDep,
    SettingsDep,
)
from service.api.schemas import (
    PROBLEM_RESPONSES,
    UNKNOWN_MODEL_RESPONSE,
    ExpertCard,
    ExpertFileCard,
    Health,
    LivenessJSONRequest,
    LivenessResponse,
    ModelCard,
    ModelIdentity,
    ModelList,
    ModelSummary,
    ModelSummaryList,
    Readiness,
)
from service.api.uploads import MAX_MODEL_NAME_CHARS, LivenessRequest, read_liveness_request
from service.errors import ServiceError
from service.metrics import Metrics
from service.model_registry import ServedModel
from service.pipeline import Analysis, LivenessPipeline
from service.policy import (
    ModalityNotAcceptedError,
    ModalityPolicy,
    OperatingPointNotAllowedError,
    check_operating_point,
    parse_key_names,
)
from service.settings import Settings

logger = logging.getLogger(__name__)

router = APIRouter()

_FILE = {"type": "string", "format": "binary"}
#: The route refuses a body without an image (422 empty-request): so does the schema.
_ONE_IMAGE = [{"required": [m]} for m in MODALITIES]


def _json_body_schema() -> dict[str, Any]:
    """The JSON form as the route reads it: at least one image as a non-null string, and
    the option ranges it enforces (the pydantic model leaves those checks to the reader,
    which names the field)."""
    schema = LivenessJSONRequest.model_json_schema()
    props = schema["properties"]
    props["depth_scale"].update(exclusiveMinimum=0, maximum=1)
    props["max_faces"]["anyOf"][0].update(minimum=1, maximum=100)
    schema["anyOf"] = [
        {"required": [m], "properties": {m: {"type": "string", "minLength": 1}}} for m in MODALITIES
    ]
    return schema


LIVENESS_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "rgb": {**_FILE, "description": "PNG/JPEG (or .npy uint8 H×W×3 RGB)"},
                        "depth": {**_FILE, "description": "16-bit PNG or .npy uint16 H×W"},
                        "ir": {**_FILE, "description": "PNG/JPEG 8-bit, 16-bit PNG or .npy"},
                        "cropped": {"type": "boolean", "default": False},
                        "depth_scale": {
                            "type": "number",
                            "default": 0.001,
                            "exclusiveMinimum": 0,
                            "maximum": 1,
                        },
                        "max_faces": {"type": "integer", "minimum": 1, "maximum": 100},
                        "operating_point": {"type": "string"},
                        "model": {
                            "type": "string",
                            "maxLength": MAX_MODEL_NAME_CHARS,
                            "description": "Name of a served model (GET /v1/models); "
                            "default: the default model",
                        },
                    },
                    "anyOf": _ONE_IMAGE,
                }
            },
            "application/json": {"schema": _json_body_schema()},
        },
    }
}


class DetectorUnavailableError(ServiceError):
    status = 503
    kind = "detector-unavailable"
    title = "Face detector unavailable"


def _analyze(pipeline: LivenessPipeline, req: LivenessRequest, settings: Settings) -> Analysis:
    t0 = time.perf_counter()
    bundle = build_bundle(
        req.files, depth_scale=req.depth_scale, max_pixels=settings.max_image_pixels
    )
    decode_ms = (time.perf_counter() - t0) * 1000.0
    return pipeline.analyze(
        bundle,
        cropped=req.cropped,
        max_faces=req.max_faces,
        operating_point=req.operating_point,
        decode_ms=decode_ms,
    )


def _check_model_choice(
    requested: str | None, default_model: str, settings: Settings, key_name: str | None
) -> None:
    """With the operating point pinned, another model (other thresholds) is pinned too:
    only keys that may choose the operating point may choose the model."""
    if requested is None or requested == default_model:
        return
    if settings.client_operating_point == "allow":
        return
    if key_name is not None and key_name in parse_key_names(settings.client_operating_point_keys):
        return
    raise OperatingPointNotAllowedError(
        f"this deployment pins the model '{default_model}' with its operating point; leave "
        f"model out (this client may not choose '{requested}')",
        field="model",
    )


def _check_policy(
    req: LivenessRequest,
    caller: Caller,
    policy: ModalityPolicy,
    pipeline: LivenessPipeline,
    settings: Settings,
    metrics: Metrics,
    default_model: str,
) -> None:
    """Refuse what the deployment does not accept (422 / 403), before any decoding."""
    try:
        policy.check_sent(req.files)
        _check_model_choice(req.model, default_model, settings, caller.key)
        check_operating_point(
            req.operating_point, pipeline.default_operating_point, settings, caller.key
        )
    except (ModalityNotAcceptedError, OperatingPointNotAllowedError) as exc:
        metrics.policy_refusals.labels(exc.kind).inc()
        logger.info("refused by policy", extra={"kind": exc.kind, "api_key": caller.key})
        raise


def _record(metrics: Metrics, analysis: Analysis) -> None:
    for stage, ms in analysis.timings_ms.items():
        metrics.stage_latency.labels(stage).observe(ms / 1000.0)
    for face in analysis.faces:
        metrics.decisions.labels(face.decision).inc()
        for component, value in face.scores.items():
            if value is not None:
                metrics.component_scores.labels(component).observe(value)
        if len(face.scores) > 1 and face.score is not None and analysis.scoring != "flexmodal":
            metrics.component_scores.labels("fused").observe(face.score)
        for r in face.reasons:
            metrics.reasons.labels(r).inc()
        if face.ood_agreement:
            metrics.ood_agreements.inc()
    for r in analysis.reasons:
        metrics.reasons.labels(r).inc()
    metrics.faces_per_request.observe(len(analysis.faces))
    received = LivenessPipeline.subset_label(analysis.modalities_received)
    used = LivenessPipeline.subset_label(analysis.modalities_used)
    metrics.modality_subsets.labels(received, used).inc()


@router.post(
    "/liveness",
    response_model=LivenessResponse,
    responses=PROBLEM_RESPONSES,
    openapi_extra=LIVENESS_BODY,
    summary="Score the faces of one RGB/depth/IR capture (any non-empty subset)",
)
async def liveness(
    request: Request,
    caller: KeyDep,
    models: ReadyModelsDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    admission: AdmissionDep,
    model: Annotated[
        str | None,
        Query(
            max_length=MAX_MODEL_NAME_CHARS,
            description="Name of a served model (GET /v1/models); the body's 'model' field "
            "may say the same. Default: the default model",
        ),
    ] = None,
) -> LivenessResponse:
    # Refused at once when overloaded (no upload parsed for nothing); otherwise the whole
    # body is read (bounded in size and time by the body middleware) and checked *before*
    # an analysis slot is taken: a slow upload must never hold one.
    admission.check()
    req = await read_liveness_request(request, model)
    # This request keeps this pipeline to the end, whatever a hot reload swaps meanwhile.
    pipeline = models.get(req.model)
    policy: ModalityPolicy = request.app.state.policy
    _check_policy(req, caller, policy, pipeline, settings, metrics, models.default_name)
    if not req.cropped and not request.app.state.face_ready:
        raise DetectorUnavailableError(
            "full-frame detection is unavailable on this server (see its log); "
            "send an aligned crop with cropped=true",
            field="cropped",
        )
    async with admission.slot():
        analysis = await run_in_threadpool(_analyze, pipeline, req, settings)
    # The policy applies to the subset actually used (modality health may drop an image).
    analysis = policy.enforce(analysis)
    _record(metrics, analysis)
    metrics.model_requests.labels(analysis.model.name).inc()
    auth: Authenticator = request.app.state.auth
    auth.record_decisions(caller.key, [f.decision for f in analysis.faces])
    rid = request.state.request_id
    logger.info(
        "analysis",
        extra={
            "api_key": caller.key,
            "modalities_received": analysis.modalities_received,
            "modalities_used": analysis.modalities_used,
            "cropped": req.cropped,
            "faces": len(analysis.faces),
            "decisions": [f.decision for f in analysis.faces],
            "reasons": analysis.reasons,
            "timings_ms": analysis.timings_ms,
        },
    )
    return LivenessResponse.from_analysis(analysis, rid)


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Model not loaded or not warmed"}},
    summary="The model is loaded and warmed",
)
async def readyz(request: Request) -> Any:
    state = request.app.state
    engine = state.engine
    model = None
    if engine is not None:
        info = engine.info
        model = ModelIdentity(name=info.name, version=info.version, sha256=info.sha256)
    body = Readiness(
        ready=bool(state.ready),
        full_frame=bool(state.ready and state.face_ready),
        model=model,
        detail=state.ready_detail,
    )
    if not state.ready:
        retry = str(state.settings.retry_after_s)
        return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": retry})
    return body


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition)",
    dependencies=[Depends(metrics_api_key)],
    response_class=PlainTextResponse,
    responses={
        200: {
            "description": "Prometheus text exposition format 0.0.4",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        401: {
            "description": PROBLEM_RESPONSES[401]["description"],
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
        },
    },
)
async def metrics_endpoint(metrics: MetricsDep) -> Response:
    from service.metrics import CONTENT_TYPE

    return Response(metrics.exposition(), media_type=CONTENT_TYPE)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _card(served: ServedModel, request: Request, trusted: bool) -> ModelCard | ModelSummary:
    """One served model's card (a summary for an untrusted caller)."""
    pipeline = served.pipeline
    engine = pipeline.engine
    spec = engine.spec
    policy: ModalityPolicy = request.app.state.policy
    if not trusted:
        # Thresholds and per-species error rates are an attacker's map: only a caller
        # with a key sees them once keys are configured (docs/security.md).
        return ModelSummary(
            name=served.name,
            version=spec.version,
            modalities=list(MODALITIES),
            accepted_modalities=policy.names(),
            default=served.default,
        )
    return ModelCard(
        name=served.name,
        version=spec.version,
        sha256=engine.info.sha256,
        providers=list(engine.info.providers),
        input_size=spec.input_size,
        modalities=list(MODALITIES),
        supported_subsets=spec.supported_subsets,
        operating_points=spec.operating_points,
        subset_operating_points=spec.subset_operating_points,
        default_operating_point=pipeline.default_operating_point,
        uncertain_margin=pipeline.uncertain_margin,
        backbone=spec.backbone,
        fusion=spec.fusion,
        training_data=spec.training_data,
        evaluation=spec.evaluation,
        created=spec.created,
        has_pixel_map=spec.has_pixel_map,
        accepted_modalities=policy.names(),
        client_operating_point=request.app.state.settings.client_operating_point,
        experts=_expert_cards(pipeline),
        default=served.default,
        loaded_at=_iso(served.loaded_at),
        reload_error=served.reload_error,
    )


@router.get(
    "/v1/models",
    response_model=ModelList | ModelSummaryList,
    responses={401: PROBLEM_RESPONSES[401]},
    summary="Every served model: the default model's card, and all cards under 'models' "
    "(summaries without a key when keys are on)",
)
async def model_list(models: ModelsDep, request: Request, caller: OptionalKeyDep) -> Any:
    served = models.models()
    cards = [_card(m, request, caller.trusted) for m in served]
    default = next(c for c, m in zip(cards, served, strict=True) if m.default)
    listing = ModelList if caller.trusted else ModelSummaryList
    body = {**default.model_dump(), "default_model": default.name}
    return listing.model_validate({**body, "models": [c.model_dump() for c in cards]})


@router.get(
    "/v1/models/{name}",
    response_model=ModelCard | ModelSummary,
    responses={401: PROBLEM_RESPONSES[401], 404: UNKNOWN_MODEL_RESPONSE},
    summary="One served model's card (a summary without a key when keys are on)",
)
async def model_card(name: str, models: ModelsDep, request: Request, caller: OptionalKeyDep) -> Any:
    served = models.served(name, field="name", status=404)
    return _card(served, request, caller.trusted)


def _expert_cards(pipeline: LivenessPipeline) -> list[ExpertCard]:
    expert = pipeline.expert
    if expert is None:
        return []
    fused = sorted(pipeline.fusion.subsets) if pipeline.fusion is not None else []
    return [
        ExpertCard(
            name=expert.name,
            version=expert.version,
            files=[ExpertFileCard(name=f.name, sha256=f.sha256) for f in expert.files],
            licence=expert.licence,
            fused_subsets=fused,
        )
    ]
