"""ONNX Runtime sessions of the service, created one way: with telemetry turned off.

Every session the runtime opens — the FlexLive model (:mod:`service.engine`), the RGB
expert (:mod:`service.rgb_expert`), the face detector (:mod:`service.face.detectors`) —
is created by :func:`inference_session`, which first calls
``onnxruntime.disable_telemetry_events()``. ONNX Runtime's telemetry events (paths, a
device id; sent through the platform's event tracing where the build has a provider for
it) are process-wide, so switching them off before the first session covers the process.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnxruntime as ort


def disable_telemetry() -> None:
    """Turn ONNX Runtime's telemetry events off for this process (idempotent, cheap)."""
    disable = getattr(ort, "disable_telemetry_events", None)
    if disable is not None:  # present in every onnxruntime this project supports (>= 1.20)
        disable()


def inference_session(
    path: str | Path, options: ort.SessionOptions, providers: Sequence[Any]
) -> ort.InferenceSession:
    """``ort.InferenceSession(path, options, providers)`` with telemetry turned off first."""
    disable_telemetry()
    return ort.InferenceSession(str(path), sess_options=options, providers=list(providers))
