"""RFC 7807 problem responses: the ONE place domain exceptions become HTTP errors.

Body: ``{"type", "title", "status", "detail", "field", "request_id"}`` with media type
``application/problem+json``. ``type`` is ``https://flexlive.dev/problems/<kind>``; the
kinds are listed in docs/api.md. Anything unexpected becomes a generic 500 problem with
no internals (the traceback goes to the log, under the request id).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sensors.bundle import BundleError
from service.errors import OverloadedError, ServiceError
from service.logging_setup import request_id_var

logger = logging.getLogger(__name__)

PROBLEM_BASE = "https://flexlive.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"

_BUNDLE_KINDS = {"does not match": "size-mismatch", "expected": "unsupported-dtype"}


def bundle_kind(exc: BundleError) -> str:
    """The problem kind of an invalid bundle (size-mismatch, unsupported-dtype, ...)."""
    if exc.field == "bundle":
        return "empty-request"
    return next((k for key, k in _BUNDLE_KINDS.items() if key in exc.reason), "invalid-bundle")


def problem_body(
    status: int, kind: str, title: str, detail: str, field: str | None = None
) -> dict[str, Any]:
    return {
        "type": PROBLEM_BASE + kind,
        "title": title,
        "status": status,
        "detail": detail,
        "field": field,
        "request_id": request_id_var.get(),
    }


def problem_response(
    status: int,
    kind: str,
    title: str,
    detail: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, kind, title, detail, field),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def problem_bytes(status: int, kind: str, title: str, detail: str) -> bytes:
    """The body of a problem sent by raw ASGI middleware (no Response object there)."""
    return json.dumps(problem_body(status, kind, title, detail, "body")).encode()


def from_exception(exc: BaseException) -> JSONResponse:
    """Map any exception to its problem response."""
    if isinstance(exc, ServiceError):
        # e.g. WWW-Authenticate on 401, Retry-After on a 429 key lockout
        headers: dict[str, str] = dict(getattr(exc, "headers", None) or {})
        if isinstance(exc, OverloadedError) or exc.status == 503:
            headers["Retry-After"] = str(getattr(exc, "retry_after_s", 1))
        return problem_response(
            exc.status, exc.kind, exc.title, exc.detail, exc.field, headers or None
        )
    if isinstance(exc, BundleError):
        return problem_response(422, bundle_kind(exc), "Invalid image set", str(exc), exc.field)
    if isinstance(exc, RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "form")]
        field = ".".join(loc) or None
        return problem_response(
            422, "invalid-input", "Invalid input", f"{field or 'request'}: {first['msg']}", field
        )
    if isinstance(exc, StarletteHTTPException):
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
        kind = title.lower().replace(" ", "-")
        return problem_response(
            exc.status_code, kind, title, str(exc.detail), None, dict(exc.headers or {})
        )
    logger.error("unhandled error", exc_info=(type(exc), exc, exc.__traceback__))
    return problem_response(
        500,
        "internal-error",
        "Internal server error",
        "the server failed to answer this request; it has been logged under the request id",
    )


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    return from_exception(exc)


def install_problem_handlers(app: FastAPI) -> None:
    for exc_type in (
        ServiceError,
        BundleError,
        RequestValidationError,
        StarletteHTTPException,
    ):
        app.add_exception_handler(exc_type, _handle)
