"""RealSense recording playback (``.db3`` ROS2 and ``.bag`` ROS1) through the SDK pipeline.

The file is opened with ``rs.config.enable_device_from_file(path, repeat_playback=False)``
and read through ``rs.pipeline`` — the same code path as a live camera — either at the
recorded pace (``real_time=True``) or as fast as the consumer reads
(``playback.set_real_time(False)``). Depth and IR are registered to colour when the
recorded streams are not already on one grid (see :mod:`sensors._realsense`).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from sensors._realsense import FrameSetConverter, import_rs
from sensors.base import FrameSource, SourceEnded, SourceError
from sensors.bundle import FrameBundle
from sensors.config import RecordingConfig

log = logging.getLogger(__name__)

#: how long one try_wait_for_frames blocks before the end of playback is checked again
_POLL_S = 0.05


class RealSenseRecordingSource(FrameSource):
    kind = "recording"
    live = False

    def __init__(self, config: RecordingConfig) -> None:
        super().__init__(config)
        self.config: RecordingConfig = config
        self._pipeline: Any = None
        self._playback: Any = None
        self._converter: FrameSetConverter | None = None
        self.modalities: tuple[str, ...] = ()

    @property
    def description(self) -> str:
        return f"recording:{self.config.path}"

    def _open(self) -> None:
        rs = import_rs()
        path = self.config.path
        if not path.is_file():
            raise SourceError(f"{self.description}: no such file")
        if path.suffix not in (".db3", ".bag"):
            raise SourceError(f"{self.description}: expected a .db3 or .bag RealSense recording")
        pipeline = rs.pipeline()
        cfg = rs.config()
        cfg.enable_device_from_file(str(path), repeat_playback=False)
        try:
            profile = pipeline.start(cfg)
        except RuntimeError as exc:
            raise SourceError(f"{self.description}: not a readable recording ({exc})") from exc
        self._pipeline = pipeline
        device = profile.get_device()
        self._playback = device.as_playback()
        self._rewind(pipeline)

        kinds = {s.stream_type() for s in profile.get_streams()}
        available = []
        if rs.stream.color in kinds:
            available.append("rgb")
        if rs.stream.depth in kinds:
            available.append("depth")
        if rs.stream.infrared in kinds:
            available.append("ir")
        wanted = tuple(m for m in self.config.modalities if m in available)
        missing = [m for m in self.config.modalities if m not in available]
        if not wanted:
            raise SourceError(
                f"{self.description}: none of the requested streams {self.config.modalities} "
                f"is in the recording (it has {available or 'no video streams'})"
            )
        if missing:
            log.warning(
                "%s: stream(s) %s missing from the recording; delivering %s",
                self.description,
                ", ".join(missing),
                ", ".join(wanted),
            )
        depth_scale = 0.001
        if "depth" in available:
            depth_scale = float(device.first_depth_sensor().get_depth_scale())
        self.modalities = wanted
        self._converter = FrameSetConverter(rs, wanted, depth_scale)
        log.info(
            "%s: streams %s, depth scale %g m, %s",
            self.description,
            ", ".join(available),
            depth_scale,
            "real time" if self.config.real_time else "as fast as possible",
        )

    def _rewind(self, pipeline: Any) -> None:
        # The pipeline starts playing before the pace can be set, and its syncer may see
        # frame 0 of each stream separately (the sensors start one by one) and drop it.
        # Pause, set the pace, drain, and replay from the start so every frame set arrives.
        self._playback.pause()
        self._playback.set_real_time(bool(self.config.real_time))
        while pipeline.try_wait_for_frames(20)[0]:
            pass
        self._playback.seek(timedelta(0))
        self._playback.resume()

    def _read(self, timeout: float | None) -> FrameBundle | None:
        rs = import_rs()
        assert self._pipeline is not None and self._converter is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            ok, frames = self._pipeline.try_wait_for_frames(int(_POLL_S * 1000))
            if ok:
                return self._converter.convert(frames)
            if self._playback.current_status() == rs.playback_status.stopped:
                raise SourceEnded(f"{self.description}: end of recording")
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def _close(self) -> None:
        if self._pipeline is not None:
            try:
                self._pipeline.stop()
            finally:
                self._pipeline = None
                self._playback = None
