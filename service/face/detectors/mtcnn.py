"""MTCNN (P-/R-/O-Net) face detector with 5 landmarks on ONNX Runtime (in progress)."""

from __future__ import annotations

from service.face.config import FaceStageConfig
from service.face.detectors.base import FaceDetector, register_detector


@register_detector("mtcnn")
def create_mtcnn(config: FaceStageConfig) -> FaceDetector:
    raise NotImplementedError("the MTCNN detector is being built (issue 3)")
