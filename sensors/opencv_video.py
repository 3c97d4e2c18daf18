"""A video file read with OpenCV: RGB-only bundles (BGR from OpenCV converted here)."""

from __future__ import annotations

import logging
import time
from typing import Any

import cv2

from sensors.base import FrameSource, SourceEnded, SourceError
from sensors.bundle import FrameBundle
from sensors.config import VideoConfig

log = logging.getLogger(__name__)


class VideoFileSource(FrameSource):
    kind = "video"
    live = False

    def __init__(self, config: VideoConfig) -> None:
        super().__init__(config)
        self.config: VideoConfig = config
        self._cap: Any = None
        self._period = 0.0
        self._next_t = 0.0

    @property
    def description(self) -> str:
        return f"video:{self.config.path}"

    def _open(self) -> None:
        if set(self.config.modalities) != {"rgb"}:
            raise SourceError(f"{self.description}: a video file only has rgb")
        if not self.config.path.is_file():
            raise SourceError(f"{self.description}: no such file")
        cap = cv2.VideoCapture(str(self.config.path))
        if not cap.isOpened():
            raise SourceError(f"{self.description}: OpenCV cannot decode this file")
        self._cap = cap
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self._period = 1.0 / fps if self.config.real_time and fps > 0 else 0.0
        self._next_t = time.monotonic()

    def _read(self, timeout: float | None) -> FrameBundle | None:
        if self._period:
            delay = self._next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._next_t = max(self._next_t + self._period, time.monotonic() - self._period)
        ok, frame = self._cap.read()
        if not ok or frame is None:
            raise SourceEnded(f"{self.description}: end of video")
        pos_ms = float(self._cap.get(cv2.CAP_PROP_POS_MSEC))
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        return FrameBundle(rgb=rgb, timestamps={"rgb": pos_ms})

    def _close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
