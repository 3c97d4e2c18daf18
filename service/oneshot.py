"""Scoring in-process, without a server: the path of ``POST /liveness`` as a function.

:class:`LocalScorer` builds what the API's lifespan builds (engine, face stage, RGB expert,
:class:`~service.pipeline.LivenessPipeline`, deployment policy) once, and answers each call
the way the route does: the same option checks, the same policy, the same decoder
(:func:`service.api.decoding.build_bundle`), the same pipeline and the same response schema
(:class:`service.api.schemas.LivenessResponse`). ``liveness predict`` and the ``flexlive``
Python API are built on it, so their JSON is the API's JSON for the same bytes.

What the route refuses with a 4xx problem is raised here as :class:`InvalidInputError`
(a ``ValueError`` naming the field); the caller decides how to show it.
"""

from __future__ import annotations

import io
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any, Union

import numpy as np

from sensors.bundle import BundleError
from service.errors import ServiceError

logger = logging.getLogger(__name__)

#: One modality as a caller may give it: a path, the encoded bytes (PNG/JPEG/.npy) or a
#: decoded array (RGB order for colour; uint16 depth; uint8/uint16 IR).
ImageInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, np.ndarray]

MODALITY_FIELDS = ("rgb", "depth", "ir")


class InvalidInputError(ValueError):
    """What the API answers with a 4xx problem: ``field`` and ``kind`` as in its body."""

    def __init__(self, detail: str, *, field: str | None = None, kind: str = "invalid-input"):
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.kind = kind


def _from_service(exc: ServiceError | BundleError) -> InvalidInputError:
    if isinstance(exc, BundleError):
        from service.api.problems import bundle_kind

        return InvalidInputError(str(exc), field=exc.field, kind=bundle_kind(exc))
    return InvalidInputError(exc.detail, field=exc.field, kind=exc.kind)


def read_image_input(field: str, value: ImageInput) -> bytes:
    """The encoded bytes of one modality, as an upload would carry them.

    Arrays become ``.npy`` bytes, which the API's decoder takes as they are (RGB order,
    no colour conversion), so every input goes through the one decoder.
    """
    if isinstance(value, np.ndarray):
        buf = io.BytesIO()
        np.save(buf, value, allow_pickle=False)
        return buf.getvalue()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str | os.PathLike):
        path = Path(value).expanduser()
        if not path.exists():
            raise InvalidInputError(f"{field}: no such file {str(path)!r}", field=field,
                                    kind="file-not-found")  # fmt: skip
        if not path.is_file():
            raise InvalidInputError(
                f"{field}: {str(path)!r} is not a file", field=field, kind="file-not-found"
            )
        try:
            return path.read_bytes()
        except OSError as exc:
            raise InvalidInputError(
                f"{field}: cannot read {str(path)!r} ({exc.strerror})", field=field,
                kind="file-not-readable",
            ) from None  # fmt: skip
    raise InvalidInputError(
        f"{field}: expected a file path, encoded image bytes or a numpy array, got "
        f"{type(value).__name__}",
        field=field,
        kind="unsupported-type",
    )


class LocalScorer:
    """Engine + face stage + RGB expert + pipeline + policy, built once from settings."""

    def __init__(self, settings: Any, engine: Any = None) -> None:
        from service.engine import InferenceEngine
        from service.pipeline import LivenessPipeline, build_face_stage, load_rgb_expert
        from service.policy import ModalityPolicy

        self.settings = settings
        self.policy = ModalityPolicy.from_settings(settings)
        self._owns_engine = engine is None
        self.engine = engine if engine is not None else InferenceEngine.load(
            settings.model_path, settings
        )  # fmt: skip
        try:
            stage = build_face_stage(settings.face, self.engine.spec.input_size)
            expert = load_rgb_expert(settings)
            self.pipeline = LivenessPipeline(self.engine, stage, settings, expert)
        except ServiceError as exc:  # e.g. LIVENESS_OPERATING_POINT not in the model
            self.close()
            raise _from_service(exc) from None

    def warmup(self) -> None:
        """Run the model, the detector and the expert once (the first call is then fast)."""
        self.pipeline.warmup()

    def close(self) -> None:
        if self._owns_engine:
            self.engine.close()

    def score(
        self,
        files: dict[str, bytes],
        *,
        depth_scale: float = 0.001,
        cropped: bool = False,
        max_faces: int | None = None,
        operating_point: str | None = None,
        request_id: str | None = None,
    ) -> Any:
        """The :class:`~service.api.schemas.LivenessResponse` the API gives these uploads.

        Raises :class:`InvalidInputError` where the API answers a 4xx problem.
        """
        from service.api.decoding import build_bundle
        from service.api.schemas import LivenessResponse
        from service.api.uploads import check_depth_scale, check_max_faces
        from service.policy import check_operating_point

        pipeline = self.pipeline
        try:
            if not files:
                raise InvalidInputError(
                    "send at least one of rgb, depth, ir", field="body", kind="empty-request"
                )
            depth_scale = check_depth_scale(float(depth_scale))
            if max_faces is not None:
                check_max_faces(int(max_faces))
            self.policy.check_sent(files)
            check_operating_point(
                operating_point, pipeline.default_operating_point, self.settings, None
            )
            t0 = time.perf_counter()
            bundle = build_bundle(
                files, depth_scale=depth_scale, max_pixels=self.settings.max_image_pixels
            )
            decode_ms = (time.perf_counter() - t0) * 1000.0
            analysis = pipeline.analyze(
                bundle,
                cropped=cropped,
                max_faces=max_faces,
                operating_point=operating_point,
                decode_ms=decode_ms,
            )
        except (ServiceError, BundleError) as exc:
            raise _from_service(exc) from None
        analysis = self.policy.enforce(analysis)
        return LivenessResponse.from_analysis(analysis, request_id or uuid.uuid4().hex)

    def score_inputs(
        self,
        rgb: ImageInput | None = None,
        depth: ImageInput | None = None,
        ir: ImageInput | None = None,
        **options: Any,
    ) -> Any:
        """:meth:`score` for paths, bytes or arrays per modality (None = not sent)."""
        given = {"rgb": rgb, "depth": depth, "ir": ir}
        files = {m: read_image_input(m, v) for m, v in given.items() if v is not None}
        return self.score(files, **options)
