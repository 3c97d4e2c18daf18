"""The production analyser: :class:`service.pipeline.LivenessPipeline` behind
:class:`~service.daemon.types.FrameAnalyzer`, and how the CLI builds it from a model path.

The deployment's modality policy (``LIVENESS_ACCEPTED_MODALITIES`` or ``--accepted-modalities``,
see :mod:`service.policy`) applies to every frame: a frame whose *used* modalities fall
short (a sensor dropped out, or modality health dropped a broken image) has every face
``uncertain`` with reason ``modality_not_accepted`` and no score, so it neither builds nor
breaks a track's streak — a dropout cannot silently downgrade the decision."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from sensors.bundle import FrameBundle
from service.daemon.types import FaceObservation, FrameAnalysis, OperatingPoint
from service.policy import ModalityPolicy

log = logging.getLogger(__name__)

# Cameras of one process share a pipeline (it serves concurrent API requests too); the
# first camera to start warms it, the others wait for that instead of warming it again.
_WARMUP_LOCK = threading.Lock()


class PipelineAnalyzer:
    """Adapts a ``LivenessPipeline`` (face stage + ONNX model + per-frame decision)."""

    def __init__(
        self,
        pipeline: Any,
        operating_point: str | None = None,
        policy: ModalityPolicy | None = None,
        *,
        owns_pipeline: bool = True,
    ) -> None:
        self.pipeline = pipeline
        #: False when several cameras share the pipeline: whoever built it closes it
        self.owns_pipeline = owns_pipeline
        self.policy = (
            policy if policy is not None else ModalityPolicy.from_settings(pipeline.settings)
        )
        name, threshold = pipeline.resolve_operating_point(operating_point)
        self._op = OperatingPoint(name, float(threshold), float(pipeline.uncertain_margin))

    @property
    def operating_point(self) -> OperatingPoint:
        return self._op

    @property
    def model_name(self) -> str:
        info = self.pipeline.engine.info
        return f"{info.name} {info.version}"

    def warmup(self) -> None:
        with _WARMUP_LOCK:
            if not self.pipeline.ready:
                self.pipeline.warmup()

    def analyze(self, bundle: FrameBundle) -> FrameAnalysis:
        result = self.policy.enforce(
            self.pipeline.analyze(bundle, cropped=False, operating_point=self._op.name)
        )
        return FrameAnalysis(
            faces=[
                FaceObservation(
                    box=(float(f.box[0]), float(f.box[1]), float(f.box[2]), float(f.box[3])),
                    score=f.score,
                    decision=f.decision,
                    reasons=list(f.reasons),
                    landmarks=f.landmarks,
                    quality=dict(f.quality),
                    threshold=float(result.threshold),
                    spoof_below=result.spoof_below,
                )
                for f in result.faces
            ],
            reasons=list(result.reasons),
            modalities_received=list(result.modalities_received),
            modalities_used=list(result.modalities_used),
            timings_ms=dict(result.timings_ms),
        )

    def close(self) -> None:
        if self.owns_pipeline:
            self.pipeline.engine.close()


def build_pipeline_analyzer(
    model_path: Path | None = None,
    operating_point: str | None = None,
    **settings_overrides: Any,
) -> PipelineAnalyzer:
    """Settings (env ``LIVENESS_*`` + overrides) → engine → face stage → pipeline.

    Raises ``service.settings.SettingsError`` / ``service.engine.ModelLoadError`` with
    readable messages.
    """
    pipeline = build_pipeline(model_path, operating_point, **settings_overrides)
    return PipelineAnalyzer(pipeline, operating_point)


def build_pipeline(
    model_path: Path | None = None,
    operating_point: str | None = None,
    **settings_overrides: Any,
) -> Any:
    """The :class:`service.pipeline.LivenessPipeline` for a model (see
    :func:`build_pipeline_analyzer`); several cameras may share it."""
    from service.engine import InferenceEngine
    from service.pipeline import LivenessPipeline, build_face_stage, load_rgb_expert
    from service.settings import load_settings

    overrides = {k: v for k, v in settings_overrides.items() if v is not None}
    if model_path is not None:
        overrides["model_path"] = model_path
    if operating_point is not None:
        overrides["operating_point"] = operating_point
    settings = load_settings(**overrides)
    engine = InferenceEngine.load(settings.model_path, settings)
    stage = build_face_stage(settings.face, engine.spec.input_size)
    pipeline = LivenessPipeline(engine, stage, settings, load_rgb_expert(settings))
    log.info("model %s %s (%s)", engine.info.name, engine.info.version, settings.model_path)
    log.info("accepted modality sets: %s", settings.accepted_modalities)
    return pipeline
