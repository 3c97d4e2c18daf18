"""Face detectors (one module per detector) and their name registry."""

from service.face.detectors.base import (
    FaceDetector,
    available_detectors,
    create_detector,
    register_detector,
)

__all__ = ["FaceDetector", "available_detectors", "create_detector", "register_detector"]
