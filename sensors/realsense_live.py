"""A live Intel RealSense camera (D400 family) through pyrealsense2.

Colour (rgb8), depth (z16) and the left infrared imager (y8) are enabled at one
resolution and frame rate; depth and IR are registered to the colour grid (``rs.align``
for depth, the aligned depth for IR — :mod:`sensors._realsense`); the depth scale comes
from the depth sensor. Optional: a device by serial, a visual preset, and emitter on/off
interleaving — the projector alternates frame by frame, depth is taken from emitter-on
frames and IR from the latest emitter-off frame, so the IR image has no dot pattern (at
half the frame rate).

A camera that is unplugged makes ``read`` raise :class:`SourceError`; the daemon closes
and reopens it with back-off.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from sensors._realsense import FrameSetConverter, import_rs
from sensors.base import FrameSource, SourceError
from sensors.bundle import FrameBundle
from sensors.config import RealSenseConfig

log = logging.getLogger(__name__)


def attached_serials() -> list[str]:
    """Serial numbers of the RealSense cameras attached now (empty without pyrealsense2)."""
    try:
        rs = import_rs()
        devices = rs.context().query_devices()
        return [d.get_info(rs.camera_info.serial_number) for d in devices]
    except (SourceError, RuntimeError):
        return []


class RealSenseLiveSource(FrameSource):
    kind = "realsense"
    live = True

    def __init__(self, config: RealSenseConfig) -> None:
        super().__init__(config)
        self.config: RealSenseConfig = config
        self._pipeline: Any = None
        self._device: Any = None
        self._converter: FrameSetConverter | None = None
        self._last_clean_ir: np.ndarray | None = None
        self._interleave = False
        self.serial: str | None = config.serial

    @property
    def description(self) -> str:
        return f"realsense:{self.serial or 'first'}"

    def _open(self) -> None:
        rs = import_rs()
        c = self.config
        serials = attached_serials()
        if not serials:
            raise SourceError("no RealSense camera attached")
        if c.serial is not None and c.serial not in serials:
            raise SourceError(f"no RealSense camera with serial {c.serial} (attached: {serials})")
        self.serial = c.serial or serials[0]
        cfg = rs.config()
        cfg.enable_device(self.serial)
        want = c.modalities
        if "rgb" in want:
            cfg.enable_stream(rs.stream.color, c.width, c.height, rs.format.rgb8, c.fps)
        # depth is also needed to register IR onto the colour grid
        if "depth" in want or ("ir" in want and "rgb" in want):
            cfg.enable_stream(rs.stream.depth, c.width, c.height, rs.format.z16, c.fps)
        if "ir" in want:
            cfg.enable_stream(rs.stream.infrared, 1, c.width, c.height, rs.format.y8, c.fps)
        pipeline = rs.pipeline()
        try:
            profile = pipeline.start(cfg)
        except RuntimeError as exc:
            raise SourceError(
                f"{self.description}: cannot start {c.width}x{c.height}@{c.fps} {want}: {exc}"
            ) from exc
        self._pipeline = pipeline
        self._device = profile.get_device()
        depth_scale = 0.001
        depth_sensor = None
        try:
            depth_sensor = self._device.first_depth_sensor()
            depth_scale = float(depth_sensor.get_depth_scale())
        except RuntimeError:
            log.warning("%s: no depth sensor; depth scale %g", self.description, depth_scale)
        if depth_sensor is not None and c.visual_preset:
            preset = getattr(rs.rs400_visual_preset, c.visual_preset, None)
            if preset is None or not depth_sensor.supports(rs.option.visual_preset):
                raise SourceError(f"{self.description}: unsupported preset {c.visual_preset!r}")
            depth_sensor.set_option(rs.option.visual_preset, float(int(preset)))
        self._interleave = False
        if c.emitter_interleave:
            if depth_sensor is not None and depth_sensor.supports(rs.option.emitter_on_off):
                depth_sensor.set_option(rs.option.emitter_on_off, 1.0)
                self._interleave = True
            else:
                log.warning("%s: emitter on/off interleaving unsupported", self.description)
        self._last_clean_ir = None
        self._converter = FrameSetConverter(
            rs,
            want,
            depth_scale,
            color_profile=_first_profile(profile, rs.stream.color),
            depth_profile=_first_profile(profile, rs.stream.depth),
        )
        log.info(
            "%s: %s at %dx%d@%d, depth scale %g m%s",
            self.description,
            ", ".join(want),
            c.width,
            c.height,
            c.fps,
            depth_scale,
            ", emitter interleaved" if self._interleave else "",
        )

    def _emitter_on(self, frames: Any) -> bool:
        rs = import_rs()
        depth = frames.get_depth_frame()
        for key in (
            rs.frame_metadata_value.frame_emitter_mode,
            rs.frame_metadata_value.frame_laser_power_mode,
        ):
            if depth and depth.supports_frame_metadata(key):
                return bool(depth.get_frame_metadata(key))
        return True

    def _read(self, timeout: float | None) -> FrameBundle | None:
        assert self._pipeline is not None and self._converter is not None
        deadline = time.monotonic() + (timeout if timeout is not None else self.config.timeout_s)
        while True:
            remaining_ms = max(1, int((deadline - time.monotonic()) * 1000))
            ok, frames = self._pipeline.try_wait_for_frames(remaining_ms)
            if not ok:
                if not self._device.is_connected():
                    raise SourceError(f"{self.description}: camera disconnected")
                return None
            if not self._interleave:
                return self._converter.convert(frames)
            if not self._emitter_on(frames):
                ir = frames.get_infrared_frame(1)
                if ir:
                    self._last_clean_ir = np.asanyarray(ir.get_data()).copy()
                if time.monotonic() >= deadline:
                    return None
                continue
            return self._converter.convert(frames, ir_override=self._last_clean_ir)

    def _close(self) -> None:
        if self._pipeline is not None:
            try:
                self._pipeline.stop()
            finally:
                self._pipeline = None
                self._device = None


def _first_profile(pipeline_profile: Any, stream: Any) -> Any:
    for p in pipeline_profile.get_streams():
        if p.stream_type() == stream:
            return p
    return None
