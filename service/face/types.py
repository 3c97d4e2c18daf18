"""Types of the face stage; its reason codes are :class:`service.decision.Reason`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.preprocess import FaceCrops
from service.decision import Reason

__all__ = ["Detection", "FaceCandidate", "FaceStageResult", "ModalityHealth", "Reason"]


@dataclass(frozen=True)
class Detection:
    """A detected face in frame pixels: box [x1, y1, x2, y2], 5 landmarks (x, y)."""

    box: np.ndarray  # (4,) float
    landmarks: np.ndarray  # (5, 2) float: left eye, right eye, nose, mouth left, mouth right
    confidence: float


@dataclass(frozen=True)
class ModalityHealth:
    modality: str
    usable: bool
    reason: str | None = None  # why it was dropped (e.g. "all zeros", "92% depth holes")
    stats: dict[str, float] = field(default_factory=dict)


@dataclass
class FaceCandidate:
    """One face ready for the model: aligned crops of the modalities that will be used."""

    detection: Detection
    crops: FaceCrops
    quality: dict[str, float] = field(default_factory=dict)
    reasons: list[Reason] = field(default_factory=list)

    @property
    def acceptable(self) -> bool:
        """False when a quality reason means the model's score must not be trusted."""
        return not self.reasons


@dataclass
class FaceStageResult:
    faces: list[FaceCandidate]
    modalities_received: tuple[str, ...]
    modalities_used: tuple[str, ...]
    health: dict[str, ModalityHealth]
    reasons: list[Reason] = field(default_factory=list)  # frame-level, e.g. NO_FACE
    #: Wall time per step in milliseconds (health, detect, align, quality).
    timings_ms: dict[str, float] = field(default_factory=dict)
    #: Which detector produced the faces ("mtcnn", "mtcnn-ir", "depth", "cropped").
    detector: str = ""
