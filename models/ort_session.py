"""ONNX Runtime sessions, created one way everywhere: the service's model, the RGB expert
and the face detector, evaluation, export checks and the benchmarks.

:func:`session_options` holds the settings every FlexLive session shares (one inter-op
thread, quiet logging, intra-op workers that do not spin unless asked) and
:func:`inference_session` opens a session from a path or bytes after turning ONNX
Runtime's telemetry events off (process-wide: paths and a device id, sent through the
platform's event tracing where the build has a provider for it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnxruntime as ort

CPU = ("CPUExecutionProvider",)


def disable_telemetry() -> None:
    """Turn ONNX Runtime's telemetry events off for this process (idempotent, cheap)."""
    disable = getattr(ort, "disable_telemetry_events", None)
    if disable is not None:  # present in every onnxruntime this project supports (>= 1.20)
        disable()


def session_options(
    intra_op_threads: int = 1, *, spinning: bool = False, sequential: bool = False
) -> ort.SessionOptions:
    """Options of a FlexLive session: ``intra_op_threads`` workers (0 = runtime default),
    one inter-op thread, warnings and errors only, full graph optimisation.

    Spinning is off unless asked: idle workers that spin steal the cores a small host
    needs for decoding, the face stage and the HTTP server (measured in docs/face-stage.md
    and docs/configuration.md).
    """
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(intra_op_threads)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if sequential:
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return opts


def inference_session(
    source: str | Path | bytes,
    options: ort.SessionOptions | None = None,
    providers: Sequence[Any] = CPU,
) -> ort.InferenceSession:
    """A session on ``source`` (a path or the model's bytes) with telemetry turned off
    first; ``options`` default to :func:`session_options` ()."""
    disable_telemetry()
    src = source if isinstance(source, bytes) else str(source)
    return ort.InferenceSession(
        src, sess_options=options or session_options(), providers=list(providers)
    )


__all__ = ["CPU", "disable_telemetry", "inference_session", "session_options"]
