"""A camera opened with OpenCV by index (webcam, V4L2 device): RGB-only bundles.

A camera that stops delivering (unplugged) makes ``read`` raise :class:`SourceError`, so
the daemon reconnects with back-off.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import cv2

from sensors.base import FrameSource, SourceError
from sensors.bundle import FrameBundle
from sensors.config import CameraConfig

log = logging.getLogger(__name__)


class OpenCVCameraSource(FrameSource):
    kind = "camera"
    live = True

    def __init__(self, config: CameraConfig) -> None:
        super().__init__(config)
        self.config: CameraConfig = config
        self._cap: Any = None

    @property
    def description(self) -> str:
        return f"camera:{self.config.index}"

    def _open(self) -> None:
        if set(self.config.modalities) != {"rgb"}:
            raise SourceError(f"{self.description}: an OpenCV camera only has rgb")
        cap = cv2.VideoCapture(self.config.index)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{self.description}: no camera at index {self.config.index}")
        for prop, value in (
            (cv2.CAP_PROP_FRAME_WIDTH, self.config.width),
            (cv2.CAP_PROP_FRAME_HEIGHT, self.config.height),
            (cv2.CAP_PROP_FPS, self.config.fps),
        ):
            if value is not None:
                cap.set(prop, float(value))
        self._cap = cap

    def _read(self, timeout: float | None) -> FrameBundle | None:
        ok, frame = self._cap.read()
        if not ok or frame is None:
            raise SourceError(f"{self.description}: camera stopped delivering frames")
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        return FrameBundle(rgb=rgb, timestamps={"rgb": time.time() * 1000.0})

    def _close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
