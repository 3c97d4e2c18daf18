"""The face detector interface and a name registry.

A detector turns one image into :class:`~service.face.types.Detection` objects (box and
five landmarks in that image's pixels). Adding another detector (YuNet, SCRFD,
RetinaFace…) is one new module that decorates its factory with :func:`register_detector`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from service.face.config import FaceStageConfig
from service.face.types import Detection

log = logging.getLogger(__name__)


@runtime_checkable
class FaceDetector(Protocol):
    """Anything that finds faces with 5 landmarks in an RGB (H×W×3 uint8) image."""

    name: str

    def detect(
        self,
        image_rgb: np.ndarray,
        *,
        min_face_px: int | None = None,
        max_faces: int | None = None,
        roi: tuple[int, int, int, int] | None = None,
    ) -> list[Detection]:
        """Faces sorted by size (largest first), at most ``max_faces``, in image pixels.

        ``roi`` (x0, y0, x1, y1): search only there (a detector may search more widely).
        """
        ...

    def warmup(self) -> None:
        """Run once on a dummy input so the first request pays no initialisation cost."""
        ...


DetectorFactory = Callable[[FaceStageConfig], FaceDetector]
_REGISTRY: dict[str, DetectorFactory] = {}
#: Modules whose import registers the built-in detectors.
_BUILTIN = ("service.face.detectors.mtcnn",)


def register_detector(name: str) -> Callable[[DetectorFactory], DetectorFactory]:
    """Decorator: register a detector factory under ``name`` (duplicates are an error)."""

    def deco(factory: DetectorFactory) -> DetectorFactory:
        if name in _REGISTRY:
            raise ValueError(f"face detector '{name}' is already registered")
        _REGISTRY[name] = factory
        return factory

    return deco


def available_detectors() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def create_detector(name: str, config: FaceStageConfig) -> FaceDetector:
    """Build the registered detector ``name`` from the face-stage configuration."""
    _load_builtin()
    if name not in _REGISTRY:
        raise KeyError(f"unknown face detector '{name}'; available: {sorted(_REGISTRY)}")
    log.debug("creating face detector %s", name)
    return _REGISTRY[name](config)


def _load_builtin() -> None:
    # Imported lazily so the registry module itself has no heavy imports.
    for module in _BUILTIN:
        importlib.import_module(module)


def box_size(det: Detection) -> float:
    x1, y1, x2, y2 = (float(v) for v in det.box)
    return max(0.0, x2 - x1) * max(0.0, y2 - y1)


def sort_and_limit(dets: list[Detection], max_faces: int | None) -> list[Detection]:
    """Largest face first; keep at most ``max_faces``."""
    dets = sorted(dets, key=box_size, reverse=True)
    return dets if max_faces is None else dets[:max_faces]
