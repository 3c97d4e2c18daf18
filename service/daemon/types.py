"""What the daemon needs from an analyser, and what one frame's analysis looks like.

The daemon is written against :class:`FrameAnalyzer` so its core (queue, tracker,
aggregation, outputs, HTTP) runs and is tested without a model; the production analyser
(:class:`service.daemon.analysis.PipelineAnalyzer`) adapts
:class:`service.pipeline.LivenessPipeline`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sensors.bundle import FrameBundle
from service.decision import Decision


@dataclass
class FaceObservation:
    """One face in one frame, as the pipeline saw it."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in frame pixels
    score: float | None  # probability of bona fide; None when the face was not scored
    decision: Decision  # the single-frame decision
    reasons: list[str] = field(default_factory=list)
    landmarks: list[list[float]] | None = None
    quality: dict[str, float] = field(default_factory=dict)
    # The threshold this frame was decided at (the model's threshold for the modality
    # subset used); None → the operating point's global threshold.
    threshold: float | None = None
    # Scores below this were decided spoof in this frame (min(t − m, spoof point), see
    # service.pipeline); None → t − m.
    spoof_below: float | None = None


@dataclass
class FrameAnalysis:
    faces: list[FaceObservation]
    reasons: list[str] = field(default_factory=list)  # frame-level, e.g. no_face
    modalities_received: list[str] = field(default_factory=list)
    modalities_used: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class OperatingPoint:
    """Where the aggregated score is cut: live ≥ threshold + margin, spoof < threshold − margin."""

    name: str
    threshold: float
    margin: float


class FrameAnalyzer(Protocol):
    """Scores the faces of one bundle."""

    @property
    def operating_point(self) -> OperatingPoint: ...

    @property
    def model_name(self) -> str: ...

    def warmup(self) -> None: ...

    def analyze(self, bundle: FrameBundle) -> FrameAnalysis: ...

    def close(self) -> None: ...
