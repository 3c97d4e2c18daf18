"""Types and reason codes shared by the face stage, the API and the daemon."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from models.preprocess import FaceCrops


class Reason(str, Enum):
    """Machine-readable reason codes, returned to clients as their string value."""

    NO_FACE = "no_face"
    FACE_TOO_SMALL = "face_too_small"  # too far from the camera
    FACE_TOO_CLOSE = "face_too_close"
    FACE_CUT_BY_EDGE = "face_cut_by_edge"
    TOO_DARK = "too_dark"
    TOO_BRIGHT = "too_bright"
    BLURRED = "blurred"
    POSE_TOO_LARGE = "pose_too_large"
    DEPTH_HOLES = "depth_holes"
    IR_SATURATED = "ir_saturated"
    # modality health: a received modality was dropped before inference
    RGB_UNUSABLE = "rgb_unusable"
    DEPTH_UNUSABLE = "depth_unusable"
    IR_UNUSABLE = "ir_unusable"
    NO_USABLE_MODALITY = "no_usable_modality"
    UNSUPPORTED_SUBSET = "unsupported_modality_subset"


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
