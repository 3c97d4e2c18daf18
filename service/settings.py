"""Settings of the REST service: one pydantic-settings class, read from ``LIVENESS_*``.

Every field has a description (docs/configuration.md mirrors them). Nested face-stage
settings use ``__`` as delimiter, e.g. ``LIVENESS_FACE__MIN_FACE_PX=60``. Unknown
``LIVENESS_*`` variables and unknown keyword arguments are rejected, and a bad value
fails at start-up with a message that names the variable (:func:`load_settings`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_origin

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models import DEFAULT_MODEL_PATH
from service.face.config import DEFAULT_MAX_FACES, FaceStageConfig

ENV_PREFIX = "LIVENESS_"
NESTED_DELIMITER = "__"
#: Variables with these prefixes belong to other components and are not this class's
#: business. None today: the camera daemon reads these same settings (model, face stage,
#: policy) and takes the rest from its options and cameras file.
FOREIGN_PREFIXES: tuple[str, ...] = ()


def analysis_slots(settings: Any) -> int:
    """``max_concurrent_requests``, or when unset: usable CPU cores ÷ intra-op threads."""
    explicit = getattr(settings, "max_concurrent_requests", None)
    if explicit:
        return int(explicit)
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    threads = int(getattr(settings, "intra_op_threads", 2)) or cores
    return max(1, cores // max(1, threads))


#: What a served model's name may look like (it is echoed in URLs and problems).
MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def parse_model_entries(text: str) -> dict[str, Path]:
    """``LIVENESS_MODELS`` ('name=path,name2=path2') as {name: path}; ValueError on a bad
    entry, a bad or repeated name."""
    out: dict[str, Path] = {}
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        name, sep, path = (part.strip() for part in entry.partition("="))
        if not sep or not path:
            raise ValueError(f"{entry!r} is not 'name=path'")
        if not MODEL_NAME_PATTERN.match(name):
            raise ValueError(
                f"model name {name!r}: use 1-64 letters, digits, '.', '_' or '-' (not first)"
            )
        if name in out:
            raise ValueError(f"model name {name!r} is given twice")
        out[name] = Path(path).expanduser()
    return out


class SettingsError(ValueError):
    """Settings could not be loaded; the message lists every bad variable and why."""


class Settings(BaseSettings):
    """Configuration of ``liveness serve`` (environment variables ``LIVENESS_<FIELD>``)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,
        extra="forbid",
        validate_default=True,
        protected_namespaces=(),
    )

    model_path: Path = Field(
        default=DEFAULT_MODEL_PATH,
        description="ONNX model file (FlexLive metadata required). Default: the bundled model.",
    )
    models: str = Field(
        default="",
        description="More models served beside LIVENESS_MODEL_PATH, as 'name=path' entries "
        "separated by commas (e.g. 'strict=/models/strict.onnx'); a request picks one with "
        "its 'model' field. Names: letters, digits, '.', '_', '-' (at most 64), unique, and "
        "not the default model's metadata name. Empty = the default model only.",
    )
    model_reload_s: float = Field(
        default=0.0,
        ge=0,
        le=86400,
        description="Every this many seconds, look for a changed model file (mtime, size, "
        "then sha256); a changed file is loaded, validated and warmed in the background and "
        "swapped in, while requests in flight finish on the old one. A file that fails is "
        "refused (logged, shown in GET /v1/models as reload_error) and the old model keeps "
        "serving. 0 = off.",
    )
    host: str = Field(default="127.0.0.1", description="Interface `liveness serve` binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="TCP port `liveness serve` binds.")
    max_upload_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted, in bytes (all files together); larger "
        "requests get 413 and are not read further.",
    )
    max_image_pixels: int = Field(
        default=4096 * 4096,
        ge=64 * 64,
        description="Largest image (width × height) decoded; checked from the header before "
        "decoding so a small file cannot expand into a huge image.",
    )
    max_faces: int = Field(
        default=DEFAULT_MAX_FACES,
        ge=1,
        le=100,
        description="Faces analysed per frame at most (full frames); a request's max_faces "
        "can only lower it.",
    )
    operating_point: str | None = Field(
        default=None,
        description="Default operating point (a name from the model's operating points, e.g. "
        "'eer'); unset = the model's default. Checked against the model at start-up.",
    )
    uncertain_margin: float | None = Field(
        default=None,
        ge=0.0,
        lt=0.5,
        description="Scores within this distance of the threshold are 'uncertain'; unset = "
        "the margin stored in the model.",
    )
    spoof_operating_point: str | None = Field(
        default=None,
        description="A face is 'spoof' only when its score is below t - margin AND below "
        "this operating point's threshold for the subset used; between the two, "
        "'uncertain'. Unset = 'bpcer1' (the score below which 1 % of dev bona fide fall) "
        "when the model has it; 'none' = spoof below t - margin.",
    )
    intra_op_threads: int = Field(
        default=2, ge=0, le=256, description="ONNX Runtime intra-op threads (0 = runtime default)."
    )
    intra_op_spinning: bool = Field(
        default=False,
        description="Let ONNX Runtime's intra-op threads spin while idle. Off by default: on "
        "shared or busy CPUs spinning steals cycles from the HTTP server and the face stage "
        "and lengthens tail latency; turn on for a dedicated inference host.",
    )
    rgb_expert: bool = Field(
        default=True,
        description="Also run the RGB expert (MiniFASNet, trained on real captures) on every "
        "full-frame face with colour and fuse its score with the flexible-modal model's, with "
        "the fusion calibrated in the model's metadata. Off: the flexible-modal model alone.",
    )
    rgb_expert_networks: str = Field(
        default="v2",
        description="MiniFASNet networks the RGB expert runs: 'v2' (default, about 1.9 ms per "
        "face here) or 'v2+v1se' (the publisher's pair, twice the time). The model's fusion "
        "applies only to the networks it was calibrated with; otherwise the expert is "
        "reported, not fused.",
    )
    rgb_expert_veto: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="A 'spoof' that rests on colour (colour was the only modality used, or "
        "the same face scored without colour is not 'spoof') becomes 'uncertain' "
        "(components_disagree) when the expert's bona fide probability is above this. "
        "0.5 = the expert's own decision; 1 = off.",
    )
    rgb_expert_ood_agreement: bool = Field(
        default=True,
        description="Where the modality subset is fused with the RGB expert, a face that is "
        "out of distribution for the flexible-modal model and has no other reason is 'live' "
        "when the fused score, the flexible-modal score alone and the expert alone all say "
        "live. Off: out_of_distribution always answers 'uncertain'.",
    )
    providers: Literal["auto", "cpu", "cuda"] = Field(
        default="auto",
        description="Execution provider: 'auto' = CUDA when onnxruntime-gpu sees a GPU, else "
        "CPU; 'cuda' fails at start-up when CUDA is unavailable.",
    )
    max_batch: int = Field(
        default=16, ge=1, le=1024, description="Faces per ONNX Runtime call at most."
    )
    max_concurrent_requests: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="Requests analysed at the same time; further ones wait in the queue. "
        "Unset = the CPU cores this process may use divided by intra_op_threads (at least 1): "
        "more concurrent analyses than cores only lengthen each one (measured: 2 slots on 2 "
        "cores gave an accepted p99 of 7-9x the unloaded p50, 1 slot 3-4x).",
    )
    max_queue: int = Field(
        default=8,
        ge=0,
        le=100_000,
        description="Requests allowed to wait for a slot; beyond it the service answers 503 "
        "with Retry-After instead of queueing without bound.",
    )
    queue_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=600,
        description="Longest wait for a slot before a queued request gets 503.",
    )
    retry_after_s: int = Field(
        default=1,
        ge=0,
        le=3600,
        description="Retry-After (seconds) on 503 answers: overload shedding and /readyz before "
        "the model is warm. A locked API key's 429 carries its own remaining lockout time.",
    )
    queue_wait_ratio: float = Field(
        default=1.0,
        ge=0,
        le=1000,
        description="Longest wait for an analysis slot, as a multiple of the recent analysis "
        "time (a moving average of how long a request holds its slot): a request whose "
        "expected wait is longer is shed at once with 503 + Retry-After, and one still "
        "waiting after that long gets 503. Keeps an accepted request's latency within a few "
        "times an unloaded one under overload. 0 = off (only LIVENESS_MAX_QUEUE and "
        "LIVENESS_QUEUE_TIMEOUT_S bound the wait).",
    )
    body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Longest time a client may take to send its whole request body, counted "
        "from the end of its headers; a slower body gets 408 body-timeout and the connection "
        "is closed. Bodies are read before an analysis slot is taken, so slow uploads never "
        "hold one.",
    )
    max_connections: int | None = Field(
        default=256,
        ge=1,
        le=1_000_000,
        description="Connections (and requests in progress) per worker process at most; "
        "beyond it the server answers 503 (uvicorn limit_concurrency). Bounds the memory "
        "held by uploads in progress at about this × LIVENESS_MAX_UPLOAD_BYTES. Unset = no "
        "limit.",
    )
    shutdown_timeout_s: int = Field(
        default=10,
        ge=0,
        le=3600,
        description="On SIGTERM/SIGINT, how long `liveness serve` waits for requests in "
        "progress (including incomplete uploads) before cancelling them and exiting. Keep it "
        "below the orchestrator's grace period (Kubernetes: 30 s by default).",
    )
    store_images: Literal[False] = Field(
        default=False,
        description="Uploads are never written to disk, logged or kept after the response; "
        "only `false` is accepted (stated so a deployment can audit it).",
    )
    log_json: bool = Field(
        default=True, description="Structured JSON log lines (one object per line) on stderr."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of the service."
    )
    accepted_modalities: str = Field(
        default="any",
        description="Modality sets a decision may rest on: 'any' (every non-empty subset), or "
        "required sets such as 'rgb+depth+ir,depth+ir' (a request is accepted when it has "
        "every modality of one set). A request sending less gets 422 modality-not-accepted; "
        "when modality health drops an image and the subset used falls short, each face is "
        "'uncertain' (modality_not_accepted) without a score. The daemon applies it per frame.",
    )
    client_operating_point: Literal["allow", "deny"] = Field(
        default="allow",
        description="'deny' pins the operating point (LIVENESS_OPERATING_POINT or the "
        "model's default): a request naming another one gets 403 operating-point-not-allowed, "
        "unless its API key is in LIVENESS_CLIENT_OPERATING_POINT_KEYS.",
    )
    client_operating_point_keys: str = Field(
        default="",
        description="Comma-separated API key names that may still choose the operating point "
        "when LIVENESS_CLIENT_OPERATING_POINT=deny.",
    )
    api_keys: SecretStr | None = Field(
        default=None,
        description="API keys as 'name:key' entries separated by commas; unset (and no keys "
        "file) = no authentication. Keys are at least 16 characters; names go to logs and "
        "metrics, keys never do.",
    )
    api_keys_file: Path | None = Field(
        default=None,
        description="File of API keys, one 'name:key' per line ('#' comments); refused when "
        "readable or writable by every user. Adds to LIVENESS_API_KEYS.",
    )
    metrics_require_key: bool = Field(
        default=False,
        description="GET /metrics needs an API key too (default: open, like /healthz and "
        "/readyz, for a scraper inside the network).",
    )
    lockout_spoofs: int = Field(
        default=0,
        ge=0,
        le=1_000_000,
        description="Lock an API key after this many requests decided 'spoof' within "
        "LIVENESS_LOCKOUT_WINDOW_S (0 = off). A locked key gets 429 with Retry-After for "
        "LIVENESS_LOCKOUT_WINDOW_S seconds. Needs API keys; counted per worker process.",
    )
    lockout_window_s: float = Field(
        default=300.0,
        gt=0,
        le=7 * 24 * 3600,
        description="Window in which spoof decisions are counted, and how long a locked key "
        "stays locked (seconds).",
    )
    face: FaceStageConfig = Field(
        default_factory=FaceStageConfig,
        description="Face stage (detector, minimum face size, ...); env `LIVENESS_FACE__<FIELD>`.",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @field_validator("model_path")
    @classmethod
    def _model_exists(cls, v: Path) -> Path:
        # Existence is checked when the engine loads, where the message can say more.
        return v.expanduser()

    @field_validator("models")
    @classmethod
    def _model_entries(cls, v: str) -> str:
        entries = parse_model_entries(v)  # raises on bad entries
        return ",".join(f"{name}={path}" for name, path in entries.items())

    @field_validator("accepted_modalities")
    @classmethod
    def _modality_sets(cls, v: str) -> str:
        from service.policy import ModalityPolicy

        return ",".join(ModalityPolicy.parse(v).names())  # canonical; raises on bad names

    @field_validator("rgb_expert_networks")
    @classmethod
    def _expert_networks(cls, v: str) -> str:
        from service.rgb_expert import parse_networks

        return "+".join(parse_networks(v))  # canonical order; raises on bad names


def unknown_env_keys(environ: Mapping[str, str] | None = None) -> list[str]:
    """``LIVENESS_*`` variables that name no setting (case-insensitive, like the reader)."""
    environ = os.environ if environ is None else environ
    known = {name.upper() for name in Settings.model_fields}
    bad = []
    for key in environ:
        upper = key.upper()
        if not upper.startswith(ENV_PREFIX) or upper.startswith(FOREIGN_PREFIXES):
            continue
        top = upper[len(ENV_PREFIX) :].split(NESTED_DELIMITER, 1)[0]
        if top not in known:
            bad.append(key)
    return sorted(bad)


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        env = ENV_PREFIX + NESTED_DELIMITER.join(loc).upper() if loc else "settings"
        value = err.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        lines.append(f"  {env}: {err['msg']}{shown}")
    return "invalid settings:\n" + "\n".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Read :class:`Settings` from ``os.environ`` plus explicit overrides.

    Raises :class:`SettingsError` with one readable line per problem: unknown
    ``LIVENESS_*`` variables, unknown override keys and invalid values.
    """
    unknown = unknown_env_keys()
    bad_keys = sorted(set(overrides) - set(Settings.model_fields))
    if unknown or bad_keys:
        names = unknown + bad_keys
        hint = ""
        if any(n.upper().startswith(ENV_PREFIX + "FACE_") for n in unknown):
            hint = f" (face-stage settings are {ENV_PREFIX}FACE{NESTED_DELIMITER}<FIELD>)"
        raise SettingsError(
            f"unknown setting(s) {', '.join(names)}{hint}; known: "
            + ", ".join(ENV_PREFIX + n.upper() for n in Settings.model_fields)
        )
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _type_name(annotation: Any) -> str:
    text = str(annotation) if get_origin(annotation) else annotation.__name__
    text = text.replace("typing.", "").replace("pathlib.", "").replace("pydantic.types.", "")
    return text.replace(" | None", " (optional)").replace("|", "or")


def _default(field: Any) -> str:
    if field.default_factory is not None:
        return "(see below)"
    value = field.default
    if isinstance(value, Path):
        try:
            return str(value.relative_to(Path(__file__).resolve().parents[1]))
        except ValueError:
            return str(value)
    if value == "":
        return "(empty)"
    return "unset" if value is None else repr(value).replace("'", "")


def settings_markdown() -> str:
    """The settings tables of docs/configuration.md, generated from the classes."""
    rows = ["| variable | type | default | description |", "| --- | --- | --- | --- |"]
    for name, f in Settings.model_fields.items():
        rows.append(
            f"| `{ENV_PREFIX}{name.upper()}` | {_type_name(f.annotation)} | {_default(f)} "
            f"| {(f.description or '').replace('|', chr(92) + '|')} |"
        )
    rows += [
        "",
        f"Face stage (`{ENV_PREFIX}FACE{NESTED_DELIMITER}<FIELD>`):",
        "",
        "| variable | type | default | description |",
        "| --- | --- | --- | --- |",
    ]
    for name, f in FaceStageConfig.model_fields.items():
        rows.append(
            f"| `{ENV_PREFIX}FACE{NESTED_DELIMITER}{name.upper()}` | {_type_name(f.annotation)} "
            f"| {_default(f)} | {(f.description or '').replace('|', chr(92) + '|')} |"
        )
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # regenerate the tables of docs/configuration.md
    import sys

    sys.stdout.write(settings_markdown())
