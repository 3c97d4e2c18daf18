"""Write FrameBundles to a RealSense recording through the SDK's own recorder.

A ``rs.software_device`` with a depth sensor (z16 depth + y8/y16 infrared, with the
``depth_units`` option so the depth scale survives) and a colour sensor (rgb8 or bgr8) is
wrapped by ``rs.recorder``; every frame is injected through the recorder's sensors, so the
file is exactly what the SDK would have written for a camera. pyrealsense2 ≥ 2.55 writes
ROS2 ``.db3`` files (it refuses a ``.bag`` name).

The result replays through :class:`sensors.realsense_recording.RealSenseRecordingSource`
(``rs.config.enable_device_from_file`` + ``rs.pipeline``) with the same pixels.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np

from sensors.bundle import DEFAULT_HFOV_DEG, FrameBundle, Intrinsics

log = logging.getLogger(__name__)

ColorFormat = Literal["rgb8", "bgr8"]


@dataclass(frozen=True)
class StreamSpec:
    """One stream of a recording: modality, size and pixel format."""

    modality: Literal["rgb", "depth", "ir"]
    width: int
    height: int
    fmt: str  # "z16", "rgb8", "bgr8", "y8", "y16"
    intrinsics: Intrinsics | None = None

    @property
    def bpp(self) -> int:
        return {"z16": 2, "y16": 2, "y8": 1, "rgb8": 3, "bgr8": 3}[self.fmt]


def _default_intrinsics(width: int, height: int) -> Intrinsics:
    return Intrinsics.from_fov(width, height, DEFAULT_HFOV_DEG)


class RecordingWriter:
    """Low-level writer: declare streams, then :meth:`write` one frame set at a time.

    Streams may differ in size (as a real camera's do before ``rs.align``); identity
    extrinsics are registered between them so playback can align.
    """

    def __init__(
        self,
        path: str | Path,
        streams: Iterable[StreamSpec],
        fps: int,
        depth_scale: float = 0.001,
        serial: str = "FLEXLIVE-SW-0001",
        pace: bool = False,
    ) -> None:
        import pyrealsense2 as rs

        self._rs = rs
        self.path = Path(path)
        if self.path.suffix != ".db3":
            raise ValueError(f"{self.path}: the SDK recorder writes ROS2 '.db3' files only")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self.path.unlink()
        self.fps = int(fps)
        self.specs = {s.modality: s for s in streams}
        if not self.specs:
            raise ValueError("a recording needs at least one stream")
        self.frames_written = 0
        # The recorder stamps messages with their arrival time, and real-time playback
        # follows those stamps; pacing makes the file's timeline match ``fps``.
        self.pace = pace
        self._t0: float | None = None

        dev = rs.software_device()
        dev.register_info(rs.camera_info.name, "FlexLive software camera")
        dev.register_info(rs.camera_info.serial_number, serial)
        stereo = dev.add_sensor("Stereo Module") if {"depth", "ir"} & set(self.specs) else None
        color = dev.add_sensor("RGB Camera") if "rgb" in self.specs else None
        profiles: dict[str, Any] = {}
        for uid, (modality, spec) in enumerate(self.specs.items()):
            sensor = color if modality == "rgb" else stereo
            assert sensor is not None
            vs = rs.video_stream()
            vs.type = {"rgb": rs.stream.color, "depth": rs.stream.depth, "ir": rs.stream.infrared}[
                modality
            ]
            vs.index = 1 if modality == "ir" else 0
            vs.uid = uid
            vs.width, vs.height, vs.fps, vs.bpp = spec.width, spec.height, self.fps, spec.bpp
            vs.fmt = getattr(rs.format, spec.fmt)
            vs.intrinsics = self._rs_intrinsics(
                spec.intrinsics or _default_intrinsics(spec.width, spec.height)
            )
            profiles[modality] = sensor.add_video_stream(vs)
        if stereo is not None:
            stereo.add_read_only_option(rs.option.depth_units, float(depth_scale))
        identity = rs.extrinsics()
        identity.rotation = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        identity.translation = [0.0, 0.0, 0.0]
        names = list(profiles)
        for a in names:
            for b in names:
                if a != b:
                    profiles[a].register_extrinsics_to(profiles[b], identity)
        dev.create_matcher(rs.matchers.default)

        self._device = dev
        self._profiles = profiles
        self._recorder = rs.recorder(str(self.path), dev)
        # Frames must enter through the recorder's wrapped sensors to be written.
        self._sensors: dict[str, Any] = {}
        for rec_sensor in self._recorder.query_sensors():
            wanted = [
                p
                for p in rec_sensor.get_stream_profiles()
                if any(p.unique_id() == q.unique_id() for q in profiles.values())
            ]
            if not wanted:
                continue
            rec_sensor.open(wanted)
            rec_sensor.start(lambda frame: None)
            for p in wanted:
                name = next(m for m, q in profiles.items() if q.unique_id() == p.unique_id())
                self._sensors[name] = rec_sensor
        # software_sensor.on_video_frame must be called on the *software* sensors
        self._soft_sensors = {"rgb": color, "depth": stereo, "ir": stereo}
        self._open = True

    def _rs_intrinsics(self, intr: Intrinsics) -> Any:
        out = self._rs.intrinsics()
        out.width, out.height = intr.width, intr.height
        out.fx, out.fy, out.ppx, out.ppy = intr.fx, intr.fy, intr.cx, intr.cy
        out.model = self._rs.distortion.none
        out.coeffs = [0.0] * 5
        return out

    def write(self, timestamp_ms: float | None = None, **images: np.ndarray | None) -> None:
        """Inject one frame per given modality (``rgb=``, ``depth=``, ``ir=``).

        ``timestamp_ms`` defaults to ``frames_written * 1000 / fps``; with ``pace`` the frame is
        written at that time (relative to the first), so a jump in timestamps leaves a gap
        that real-time playback reproduces."""
        if not self._open:
            raise RuntimeError("write() after close()")
        rs = self._rs
        ts = self.frames_written * 1000.0 / self.fps if timestamp_ms is None else timestamp_ms
        if self.pace:  # arrive at the frame's own time: a jump in timestamps is a gap
            now = time.monotonic()
            if self._t0 is None:
                self._t0 = now - ts / 1000.0
            delay = self._t0 + ts / 1000.0 - now
            if delay > 0:
                time.sleep(delay)
        for modality, image in images.items():
            if image is None:
                continue
            if modality not in self.specs:
                raise ValueError(f"{modality}: not a stream of this recording")
            spec = self.specs[modality]
            expected_dtype = np.uint16 if spec.bpp == 2 else np.uint8
            shape = (spec.height, spec.width, 3) if spec.bpp == 3 else (spec.height, spec.width)
            if image.shape != shape or image.dtype != expected_dtype:
                raise ValueError(
                    f"{modality}: expected {np.dtype(expected_dtype).name} {shape}, "
                    f"got {image.dtype} {image.shape}"
                )
            frame = rs.software_video_frame()
            frame.pixels = np.ascontiguousarray(image)
            frame.stride = spec.width * spec.bpp
            frame.bpp = spec.bpp
            frame.timestamp = ts
            frame.domain = rs.timestamp_domain.hardware_clock
            frame.frame_number = self.frames_written
            frame.profile = self._profiles[modality].as_video_stream_profile()
            sensor = self._soft_sensors[modality]
            assert sensor is not None
            sensor.on_video_frame(frame)
        self.frames_written += 1

    def close(self) -> Path:
        """Stop the sensors and finish the file."""
        if self._open:
            self._open = False
            for sensor in {id(s): s for s in self._sensors.values()}.values():
                sensor.stop()
                sensor.close()
            # the file is finalised when the recorder is destroyed
            del self._sensors
            del self._recorder
            log.info("wrote %d frame sets to %s", self.frames_written, self.path)
        return self.path

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def write_recording(
    path: str | Path,
    bundles: Iterable[FrameBundle],
    fps: int = 30,
    *,
    color_format: ColorFormat = "rgb8",
    pace: bool = False,
) -> Path:
    """Write ``bundles`` (all with the same modalities and size) to a ``.db3`` recording.

    The first bundle fixes the streams, size, depth scale and intrinsics. RGB is stored as
    ``rgb8`` (or converted to ``bgr8`` when asked); uint8 IR as ``y8``, uint16 IR as ``y16``.
    ``pace=True`` writes in real time (``len(bundles) / fps`` seconds) so that a real-time
    playback reproduces the frame rate; otherwise the file's own clock is compressed and
    only as-fast-as-possible playback is meaningful.
    """
    iterator = iter(bundles)
    first = next(iterator, None)
    if first is None:
        raise ValueError("write_recording needs at least one bundle")
    first.validate()
    height, width = first.shape
    specs: list[StreamSpec] = []
    for modality in first.present:
        array = getattr(first, modality)
        fmt = {
            "rgb": color_format,
            "depth": "z16",
            "ir": "y16" if array.dtype == np.uint16 else "y8",
        }[modality]
        specs.append(StreamSpec(modality, width, height, fmt, first.intrinsics))  # type: ignore[arg-type]
    writer = RecordingWriter(path, specs, fps, depth_scale=first.depth_scale, pace=pace)
    try:
        for bundle in _chain(first, iterator):
            if bundle.present != first.present or bundle.shape != (height, width):
                raise ValueError(
                    f"bundle {bundle.frame_index}: modalities {bundle.present} {bundle.shape} "
                    f"differ from the first bundle's {first.present} {(height, width)}"
                )
            rgb = bundle.rgb
            if rgb is not None and color_format == "bgr8":
                rgb = np.ascontiguousarray(rgb[:, :, ::-1])
            writer.write(rgb=rgb, depth=bundle.depth, ir=bundle.ir)
    finally:
        writer.close()
    return writer.path


def _chain(first: FrameBundle, rest: Iterable[FrameBundle]) -> Iterable[FrameBundle]:
    yield first
    yield from rest
