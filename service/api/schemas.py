"""Request and response schemas of the REST API (they also drive the OpenAPI document)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.decision import Decision

if TYPE_CHECKING:
    from service.pipeline import Analysis


class ModelIdentity(BaseModel):
    name: str
    version: str
    sha256: str = Field(description="SHA-256 of the ONNX file that answered")


class OperatingPoint(BaseModel):
    name: str = Field(description="Operating point used for the decisions, e.g. 'eer'")
    threshold: float = Field(description="Threshold on the bona fide score")
    uncertain_margin: float = Field(description="Scores within this of the threshold: uncertain")
    spoof_below: float | None = Field(
        None,
        description="Scores below this are 'spoof': threshold - margin, or the spoof "
        "operating point's threshold (LIVENESS_SPOOF_OPERATING_POINT) when lower",
    )


class Face(BaseModel):
    box: list[float] = Field(description="[x1, y1, x2, y2] in input pixels")
    landmarks: list[list[float]] = Field(
        description="5 × [x, y]: left eye, right eye, nose, mouth left, mouth right (image sides)"
    )
    score: float | None = Field(
        description="Probability of bona fide in [0, 1]; null when the face was not scored"
    )
    decision: Decision
    quality: dict[str, float] = Field(description="Quality measurements of the face")
    reasons: list[str] = Field(description="Reason codes; any reason makes the face uncertain")
    ood_distance: float | None = Field(
        default=None,
        description="Distance of the face to the model's training data for the modalities "
        "used; above the model's threshold the face is uncertain (out_of_distribution)",
    )
    scores: dict[str, float | None] = Field(
        default_factory=dict,
        description="The components behind 'score': 'flexmodal' (the flexible-modal model) "
        "and, on full frames with colour when the RGB expert is on, 'rgb_expert' (MiniFASNet, "
        "trained on real captures); null when that component failed",
    )


class LivenessResponse(BaseModel):
    request_id: str
    model: ModelIdentity
    operating_point: OperatingPoint
    modalities_received: list[str]
    modalities_used: list[str] = Field(description="Received modalities that passed health")
    faces: list[Face] = Field(description="One entry per face, largest first; may be empty")
    reasons: list[str] = Field(description="Frame-level reason codes, e.g. no_face")
    timings_ms: dict[str, float] = Field(
        description="decode, face, inference, rgb_expert, total (ms)"
    )
    detector: str = Field(description="Which detector found the faces ('cropped' for crops)")
    scoring: str = Field(
        default="flexmodal",
        description="How 'score' was made: 'flexmodal', or 'flexmodal+rgb_expert' when the "
        "two components were fused (the operating point's threshold is then the fused one)",
    )

    @classmethod
    def from_analysis(cls, analysis: Analysis, request_id: str) -> LivenessResponse:
        """The response to one analysis: the route, ``liveness predict`` and the ``flexlive``
        Python API all answer through this, so their bodies cannot drift apart."""
        info = analysis.model
        return cls.model_validate(
            {
                "request_id": request_id,
                "model": {"name": info.name, "version": info.version, "sha256": info.sha256},
                "operating_point": {
                    "name": analysis.operating_point,
                    "threshold": analysis.threshold,
                    "uncertain_margin": analysis.uncertain_margin,
                    "spoof_below": analysis.spoof_below,
                },
                "modalities_received": analysis.modalities_received,
                "modalities_used": analysis.modalities_used,
                "faces": [vars(f) for f in analysis.faces],
                "reasons": analysis.reasons,
                "timings_ms": analysis.timings_ms,
                "detector": analysis.detector,
                "scoring": analysis.scoring,
            }
        )


class LivenessJSONRequest(BaseModel):
    """The JSON form of ``POST /liveness``: images as base64 (optionally a data: URL)."""

    model_config = ConfigDict(extra="forbid")

    rgb: str | None = Field(default=None, description="base64 PNG/JPEG/.npy, uint8 RGB")
    depth: str | None = Field(default=None, description="base64 16-bit PNG or .npy (uint16)")
    ir: str | None = Field(default=None, description="base64 PNG/JPEG/.npy, uint8 or uint16")
    cropped: bool = Field(default=False, description="The images are one aligned face crop")
    depth_scale: float = Field(default=0.001, description="Metres per depth unit")
    max_faces: int | None = Field(default=None, description="Faces analysed at most")
    operating_point: str | None = Field(default=None, description="Operating point name")
    model: str | None = Field(
        default=None, description="Name of a served model (GET /v1/models); default model"
    )


class Problem(BaseModel):
    type: str = Field(description="https://flexlive.dev/problems/<kind>")
    title: str
    status: int
    detail: str
    field: str | None = Field(description="The request field the problem is about")
    request_id: str | None = None


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    ready: bool = Field(description="The model is loaded and warmed (cropped requests work)")
    full_frame: bool = Field(
        default=False, description="The face detector is warmed too (full-frame requests work)"
    )
    model: ModelIdentity | None = None
    detail: str = ""


class ExpertFileCard(BaseModel):
    name: str
    sha256: str


class ExpertCard(BaseModel):
    name: str
    version: str
    files: list[ExpertFileCard]
    licence: str
    fused_subsets: list[str] = Field(
        description="Subsets whose score fuses this expert (empty: reported, not fused)"
    )


class ModelCard(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    name: str
    version: str
    sha256: str
    providers: list[str]
    input_size: int
    modalities: list[str]
    supported_subsets: list[str]
    operating_points: dict[str, float]
    subset_operating_points: dict[str, dict[str, float]] = Field(
        description="Dev-calibrated thresholds per modality subset; a decision uses the "
        "threshold of the subset it actually used (operating_points when none is listed)"
    )
    default_operating_point: str
    uncertain_margin: float = Field(description="Margin in effect (setting or model)")
    backbone: str
    fusion: str
    training_data: str
    evaluation: dict[str, Any]
    created: str
    has_pixel_map: bool
    accepted_modalities: list[str] = Field(
        default_factory=lambda: ["any"],
        description="Modality sets this deployment decides on ('any', or required sets such "
        "as 'rgb+depth+ir'); see LIVENESS_ACCEPTED_MODALITIES",
    )
    client_operating_point: Literal["allow", "deny"] = Field(
        default="allow",
        description="'deny': requests may not choose another operating point than "
        "default_operating_point (403), except with a key allowed to",
    )
    experts: list[ExpertCard] = Field(
        default_factory=list,
        description="Models that run beside the flexible-modal model (the RGB expert), with "
        "the sha256 of each file and the modality subsets whose scores it is fused into",
    )
    default: bool = Field(
        default=True, description="This model answers requests that name no model"
    )
    loaded_at: str = Field(
        default="", description="When the model serving now was loaded (UTC, ISO 8601)"
    )
    reload_error: str | None = Field(
        default=None,
        description="Why the model file on disk was refused by hot reload (the model shown "
        "keeps serving); null when the file on disk is the one serving",
    )


class ModelSummary(BaseModel):
    """What ``GET /v1/models`` shows a caller without an API key when keys are configured."""

    name: str
    version: str
    modalities: list[str]
    accepted_modalities: list[str] = Field(
        description="Modality sets this deployment decides on ('any', or required sets such "
        "as 'rgb+depth+ir')"
    )
    detail: str = Field(
        default="send an API key for the full model card (thresholds, evaluation)",
    )
    default: bool = Field(
        default=True, description="This model answers requests that name no model"
    )


class ModelList(ModelCard):
    """``GET /v1/models``: the default model's card (the fields of a single-model server,
    kept for existing clients) and every served model's card in ``models``."""

    default_model: str = Field(description="Name of the model used when a request names none")
    models: list[ModelCard] = Field(description="Every served model, the default first")


class ModelSummaryList(ModelSummary):
    """``GET /v1/models`` for a caller without a key when keys are configured."""

    default_model: str = Field(description="Name of the model used when a request names none")
    models: list[ModelSummary] = Field(description="Every served model, the default first")


def _problem_response(description: str) -> dict[str, Any]:
    return {
        "model": Problem,
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


#: ``GET /v1/models/{name}`` for a name no model is served under.
UNKNOWN_MODEL_RESPONSE = _problem_response(
    "No model is served under this name (unknown-model); the detail lists the served ones"
)

PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "model": Problem,
        "description": desc,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }
    for status, desc in {
        401: "API key missing or invalid (when keys are configured); see WWW-Authenticate",
        403: "The operating point is pinned by the deployment",
        408: "The request body did not arrive within LIVENESS_BODY_TIMEOUT_S",
        413: "Request body or image over the limit",
        415: "Neither multipart/form-data nor application/json",
        422: "A field is missing, undecodable, of the wrong type or size, the modalities "
        "sent are not accepted by the deployment (modality-not-accepted), or 'model' names "
        "no served model (unknown-model)",
        429: "The API key is locked after repeated spoof decisions; see Retry-After",
        503: "Overloaded or not ready; see Retry-After",
    }.items()
}
