"""Raw ASGI middleware: request ids, access log + request metrics, catch-all, body limit.

Pure ASGI (no BaseHTTPMiddleware) so the body limit is enforced *while* the body is
received: a declared Content-Length over the limit is refused before one byte is read,
and a chunked body is cut off as soon as it passes the limit.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.problems import PROBLEM_MEDIA_TYPE, from_exception, problem_bytes
from service.errors import PayloadTooLargeError
from service.logging_setup import request_id_var
from service.metrics import Metrics

logger = logging.getLogger("service.api.access")

_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
#: Endpoints reported by name; anything else (scanners, typos) is counted as "other".
KNOWN_PATHS = {"/liveness", "/healthz", "/readyz", "/metrics", "/v1/models", "/docs"}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class RequestContextMiddleware:
    """Request id (X-Request-ID in and out), access log, request metrics, last-resort 500."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        rid = incoming if incoming and _REQUEST_ID_OK.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        start = time.perf_counter()
        status = {"code": 500, "started": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:  # last resort: never a traceback to the client
            if status["started"]:
                logger.error("error after the response started", exc_info=exc)
            else:
                response = from_exception(exc)
                await response(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            path = getattr(route, "path", None) or scope.get("path", "")
            endpoint = path if path in KNOWN_PATHS else "other"
            code = int(status["code"])
            self.metrics.requests.labels(endpoint, scope.get("method", ""), str(code)).inc()
            self.metrics.request_latency.labels(endpoint).observe(elapsed)
            if endpoint not in ("/metrics", "/healthz", "/readyz") or code >= 400:
                logger.info(
                    "request",
                    extra={
                        "method": scope.get("method"),
                        "path": scope.get("path"),
                        "status": code,
                        "duration_ms": round(elapsed * 1000, 2),
                        "client": (scope.get("client") or ("", 0))[0],
                    },
                )
            request_id_var.reset(token)


class BodyLimitMiddleware:
    """413 for bodies over ``max_bytes``, decided before or while the body is read."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self, size: str) -> PayloadTooLargeError:
        return PayloadTooLargeError(
            f"request body is {size}; the limit is {self.max_bytes} bytes "
            "(LIVENESS_MAX_UPLOAD_BYTES)",
            field="body",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._send_413(send, self._too_large(f"{int(declared)} bytes"))
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large(f"over {received} bytes")
            return message

        await self.app(scope, limited_receive, send)

    @staticmethod
    async def _send_413(send: Send, exc: PayloadTooLargeError) -> None:
        body = problem_bytes(exc.status, exc.kind, exc.title, exc.detail)
        headers: list[Any] = [
            (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": exc.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
