"""ONNX Runtime sessions of the service: :mod:`models.ort_session` (one factory for every
session FlexLive opens, telemetry off first), re-exported where the service imports it."""

from __future__ import annotations

from models.ort_session import disable_telemetry, inference_session, session_options

__all__ = ["disable_telemetry", "inference_session", "session_options"]
