"""Raw ASGI middleware: request ids, access log + request metrics, catch-all, body bounds.

Pure ASGI (no BaseHTTPMiddleware) so the body is bounded *while* it is received: a
declared Content-Length over the limit is refused before one byte is read, a chunked
body is cut off as soon as it passes the limit, and a body that has not fully arrived
within the body deadline gets 408 (a slow or idle upload costs a connection for a
bounded time and never an analysis slot). A client that disconnects before its body is
complete is counted apart (status label 499), not as a server error.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.problems import PROBLEM_MEDIA_TYPE, from_exception, problem_bytes
from service.errors import PayloadTooLargeError, ServiceError
from service.logging_setup import request_id_var
from service.metrics import Metrics

logger = logging.getLogger("service.api.access")

_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
#: Endpoints reported by name; anything else (scanners, typos) is counted as "other".
KNOWN_PATHS = {
    "/liveness",
    "/healthz",
    "/readyz",
    "/metrics",
    "/v1/models",
    "/v1/models/{name}",
    "/docs",
}
#: Status label of a request whose client went away before its body was complete
#: (nginx's "client closed request"); no response is sent.
CLIENT_CLOSED = 499


class BodyTimeoutError(ServiceError):
    """The request body did not arrive within the body deadline (408, connection closed)."""

    status = 408
    kind = "body-timeout"
    title = "Request body timeout"
    headers = {"Connection": "close"}


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
        except ClientDisconnect:
            # Nobody to answer; the client's doing, not the server's: no 500, no traceback.
            if not status["started"]:
                status["code"] = CLIENT_CLOSED
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
            extra = {
                "method": scope.get("method"),
                "path": scope.get("path"),
                "status": code,
                "duration_ms": round(elapsed * 1000, 2),
                "client": (scope.get("client") or ("", 0))[0],
            }
            if code == CLIENT_CLOSED:
                self.metrics.client_disconnects.labels(endpoint).inc()
                body_bytes = scope["state"].get("body_bytes_received")
                logger.warning(
                    "client disconnected before the request was answered",
                    extra={**extra, "body_bytes_received": body_bytes},
                )
            elif endpoint not in ("/metrics", "/healthz", "/readyz") or code >= 400:
                logger.info("request", extra=extra)
            request_id_var.reset(token)


class BodyLimitMiddleware:
    """413 for bodies over ``max_bytes``, 408 for bodies slower than ``timeout_s``.

    The deadline counts from the request's arrival (its headers are complete) to the last
    body chunk; each ``receive`` waits at most for what is left of it, so a trickle of
    one byte a second is cut off as surely as silence.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        timeout_s: float | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.metrics = metrics

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
        arrived = time.monotonic()
        deadline = None if self.timeout_s is None else arrived + self.timeout_s
        request_state = scope.setdefault("state", {})
        received = 0
        done = False  # body complete, cut off or abandoned: receive passes through
        receiving = False  # counted in the receiving gauge

        def stop_receiving() -> None:
            nonlocal done, receiving
            done = True
            if receiving and self.metrics is not None:
                self.metrics.receiving.dec()
            receiving = False

        async def bounded_receive() -> Message:
            nonlocal received, receiving
            if done:  # e.g. waiting for a disconnect after the body: no deadline
                return await receive()
            if not receiving and self.metrics is not None:
                self.metrics.receiving.inc()
            receiving = True
            try:
                if deadline is None:
                    message = await receive()
                else:
                    message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            except asyncio.TimeoutError:
                stop_receiving()
                raise self._timed_out(scope, received) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                request_state["body_bytes_received"] = received
                if received > self.max_bytes:
                    stop_receiving()
                    raise self._too_large(f"over {received} bytes")
                if not message.get("more_body", False):
                    stop_receiving()
                    if self.metrics is not None:
                        self.metrics.body_read.observe(time.monotonic() - arrived)
            elif message["type"] == "http.disconnect":
                stop_receiving()
            return message

        try:
            await self.app(scope, bounded_receive, send)
        finally:
            stop_receiving()

    def _timed_out(self, scope: Scope, received: int) -> BodyTimeoutError:
        if self.metrics is not None:
            self.metrics.body_timeouts.inc()
        logger.warning(
            "request body timed out",
            extra={
                "path": scope.get("path"),
                "body_bytes_received": received,
                "body_timeout_s": self.timeout_s,
                "client": (scope.get("client") or ("", 0))[0],
            },
        )
        return BodyTimeoutError(
            f"the request body did not arrive within {self.timeout_s:g} s ({received} bytes "
            "received; LIVENESS_BODY_TIMEOUT_S); send the whole body promptly",
            field="body",
        )

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
