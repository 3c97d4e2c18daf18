"""Domain exceptions of the serving runtime.

Raised by decoding, the pipeline and admission control; :mod:`service.api.problems`
maps them (and :class:`sensors.bundle.BundleError`) to RFC 7807 problem responses in one
place. Each carries the client-facing ``field`` it is about, a stable problem ``kind``
(the last part of the problem ``type`` URI) and an HTTP status.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base class: something about a request the client can fix or retry."""

    status: int = 422
    kind: str = "invalid-input"
    title: str = "Invalid input"

    def __init__(self, detail: str, *, field: str | None = None, kind: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        if kind is not None:
            self.kind = kind


class InputError(ServiceError):
    """A field of the request is missing, malformed or not allowed (422)."""


class ImageDecodeError(InputError):
    """Bytes of an image field could not be turned into an array (422)."""

    kind = "undecodable-image"
    title = "Image could not be decoded"


class PayloadTooLargeError(ServiceError):
    """The request body or one image is over the configured limit (413)."""

    status = 413
    kind = "payload-too-large"
    title = "Payload too large"


class OverloadedError(ServiceError):
    """No slot and no queue room, or waited too long for a slot (503, Retry-After)."""

    status = 503
    kind = "overloaded"
    title = "Service overloaded"

    def __init__(self, detail: str, *, retry_after_s: int = 1) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class NotReadyError(ServiceError):
    """The model is not loaded and warmed yet (503)."""

    status = 503
    kind = "not-ready"
    title = "Service not ready"
