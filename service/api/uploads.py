"""Reading a ``POST /liveness`` request: multipart/form-data or JSON with base64 images.

Both forms end as :class:`LivenessRequest` (raw file bytes per modality + options).
Multipart files are kept in memory (the body limit bounds them): uploads are never
spooled to disk. Unknown fields are refused by name.
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass, field

from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from service.api.decoding import MODALITY_FIELDS
from service.api.schemas import LivenessJSONRequest
from service.errors import InputError, PayloadTooLargeError, ServiceError

OPTION_FIELDS = ("cropped", "depth_scale", "max_faces", "operating_point", "model")
ACCEPTED = ", ".join((*MODALITY_FIELDS, *OPTION_FIELDS))
MAX_OPERATING_POINT_CHARS = 64
MAX_MODEL_NAME_CHARS = 64
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


class UnsupportedMediaTypeError(ServiceError):
    status = 415
    kind = "unsupported-media-type"
    title = "Unsupported media type"


class _InMemoryMultiPartParser(MultiPartParser):
    # Never spool an upload to a temporary file; the body limit bounds memory.
    spool_max_size = 1 << 62

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        # Starlette's own refusal does not say which field was too long; this one does.
        part = self._current_part
        if part.file is None and len(part.data) + (end - start) > self.max_part_size:
            name = part.field_name or "body"
            raise PayloadTooLargeError(
                f"{name}: form field over {self.max_part_size // 1024} KiB (option fields "
                "are short values; images go in file parts)",
                field=name,
            )
        super().on_part_data(data, start, end)


@dataclass
class LivenessRequest:
    files: dict[str, bytes] = field(default_factory=dict)
    cropped: bool = False
    depth_scale: float = 0.001
    max_faces: int | None = None
    operating_point: str | None = None
    model: str | None = None  # a served model's name; None = the default model


def _shown(raw: str, limit: int = 40) -> str:
    """A client's value as quoted in a problem: never more than ``limit`` characters."""
    return repr(raw) if len(raw) <= limit else f"{raw[:limit]!r}… ({len(raw)} characters)"


def parse_bool(name: str, raw: str) -> bool:
    v = raw.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise InputError(f"{name}: expected true or false, got {_shown(raw)}", field=name)


def check_depth_scale(value: float) -> float:
    if not (math.isfinite(value) and 0 < value <= 1):
        raise InputError(
            f"depth_scale: metres per depth unit must be in (0, 1], got {value!r}",
            field="depth_scale",
        )
    return value


def parse_depth_scale(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise InputError(
            f"depth_scale: expected a number (metres per depth unit), got {_shown(raw)}",
            field="depth_scale",
        ) from None
    return check_depth_scale(value)


def check_operating_point(raw: str | None) -> str | None:
    """Operating point names are short identifiers; a long one is refused before it can be
    echoed back in an 'unknown operating point' problem."""
    value = (raw or "").strip()
    if len(value) > MAX_OPERATING_POINT_CHARS:
        raise InputError(
            f"operating_point: names are at most {MAX_OPERATING_POINT_CHARS} characters, got "
            f"{_shown(value)}",
            field="operating_point",
            kind="unknown-operating-point",
        )
    return value or None


def check_model_name(raw: str | None) -> str | None:
    """A served model's name (``LIVENESS_MODELS``); a long one is refused before it can be
    echoed back in an 'unknown model' problem."""
    value = (raw or "").strip()
    if len(value) > MAX_MODEL_NAME_CHARS:
        raise InputError(
            f"model: names are at most {MAX_MODEL_NAME_CHARS} characters, got {_shown(value)}",
            field="model",
            kind="unknown-model",
        )
    return value or None


def check_max_faces(value: int) -> int:
    if not 1 <= value <= 100:
        raise InputError(f"max_faces: must be between 1 and 100, got {value}", field="max_faces")
    return value


def parse_max_faces(raw: str) -> int | None:
    if not raw.strip():
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InputError(
            f"max_faces: expected an integer, got {_shown(raw)}", field="max_faces"
        ) from None
    return check_max_faces(value)


def _unknown(name: str) -> InputError:
    return InputError(
        f"unknown field {_shown(name)}; send at least one of rgb, depth, ir (accepted fields: "
        f"{ACCEPTED})",
        field=name[:64],
        kind="unknown-field",
    )


def _empty() -> InputError:
    return InputError(
        "send at least one of rgb, depth, ir (as multipart files or base64 JSON fields)",
        field="body",
        kind="empty-request",
    )


async def _read_multipart(request: Request) -> LivenessRequest:
    parser = _InMemoryMultiPartParser(
        request.headers, request.stream(), max_files=8, max_fields=16, max_part_size=64 * 1024
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InputError(
            f"malformed multipart body: {exc.message}", field="body", kind="malformed-body"
        ) from None
    out = LivenessRequest()
    try:
        for name, value in form.multi_items():
            if name in MODALITY_FIELDS:
                if name in out.files:
                    raise InputError(f"{name}: sent more than once", field=name)
                if not isinstance(value, UploadFile):
                    raise InputError(
                        f"{name}: must be a file part (e.g. curl -F {name}=@image.png)",
                        field=name,
                    )
                out.files[name] = await value.read()
            elif isinstance(value, UploadFile):
                if name in OPTION_FIELDS:
                    raise InputError(f"{name}: must be a plain form field, not a file", field=name)
                raise _unknown(name)
            elif name == "cropped":
                out.cropped = parse_bool(name, value)
            elif name == "depth_scale":
                out.depth_scale = parse_depth_scale(value)
            elif name == "max_faces":
                out.max_faces = parse_max_faces(value)
            elif name == "operating_point":
                out.operating_point = check_operating_point(value)
            elif name == "model":
                out.model = check_model_name(value)
            else:
                raise _unknown(name)
    finally:
        await form.close()
    return out


def _b64(name: str, raw: str) -> bytes:
    text = raw.strip()
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(
            f"{name}: not valid base64", field=name, kind="undecodable-image"
        ) from None


async def _read_json(request: Request) -> LivenessRequest:
    body = await request.body()
    if not body.strip():
        raise _empty()
    try:
        req = LivenessJSONRequest.model_validate_json(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        if err["type"] == "extra_forbidden":
            raise _unknown(loc) from None
        if err["type"].startswith("json"):
            raise InputError(f"body: not valid JSON ({err['msg']})", field="body") from None
        raise InputError(f"{loc}: {err['msg']}", field=loc) from None
    out = LivenessRequest(
        cropped=req.cropped,
        depth_scale=check_depth_scale(req.depth_scale),
        max_faces=None if req.max_faces is None else check_max_faces(req.max_faces),
        operating_point=check_operating_point(req.operating_point),
        model=check_model_name(req.model),
    )
    for name in MODALITY_FIELDS:
        raw = getattr(req, name)
        if raw is not None:
            out.files[name] = _b64(name, raw)
    return out


async def read_liveness_request(request: Request, model: str | None = None) -> LivenessRequest:
    """Parse either accepted form; raise :class:`InputError` (422) / 415 / 413.
    ``model``: the ``model`` query parameter, which the body may repeat but not contradict."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        out = await _read_multipart(request)
    elif ctype == "application/json" or ctype.endswith("+json"):
        out = await _read_json(request)
    elif not ctype and not await request.body():
        raise _empty()
    else:
        raise UnsupportedMediaTypeError(
            f"content type {ctype or 'none'!r} is not accepted; send multipart/form-data "
            "(file fields rgb, depth, ir) or application/json (base64 fields)",
            field="body",
        )
    if not out.files:
        raise _empty()
    query_model = check_model_name(model)
    if query_model is not None:
        if out.model is not None and out.model != query_model:
            raise InputError(
                f"model: the query names {_shown(query_model)} and the body "
                f"{_shown(out.model)}; name one model",
                field="model",
            )
        out.model = query_model
    return out
