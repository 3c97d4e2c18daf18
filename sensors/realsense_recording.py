"""RealSense recording playback (``.db3`` ROS2 and ``.bag`` ROS1) through the SDK.

The file is opened as the SDK's playback device (``rs.context().load_device`` — the
device ``rs.config.enable_device_from_file`` hands to ``rs.pipeline``); each recorded
stream is started into a callback that copies the frame out and releases it at once,
and frames of one instant are grouped into a bundle by timestamp. The playback runs at
the recorded pace (``real_time=True``) or as fast as the consumer reads
(``set_real_time(False)``): the callback then blocks on a small bounded buffer, which
holds the playback back, so no frame is lost.

Why not ``rs.pipeline`` + ``wait_for_frames``: its syncer cannot match frame set 0 (it
has not yet seen every stream), emits those frames one by one and the pipeline drops
them — sometimes, depending on thread timing; and a non-real-time playback waits for
frames a syncer holds, which stalls it for seconds at a time. The playback device +
callbacks are deterministic: every recorded frame set comes back, every time.

Depth and IR are registered to colour (numpy, :func:`sensors._realsense.align_depth_to_color`)
when the recorded streams are not already on one grid.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from typing import Any

import numpy as np

from sensors._realsense import FrameSetConverter, color_to_rgb, import_rs, to_intrinsics
from sensors.base import FrameSource, SourceEnded, SourceError
from sensors.bundle import MODALITIES, FrameBundle, Intrinsics
from sensors.config import RecordingConfig

log = logging.getLogger(__name__)

#: frames buffered between the playback callback and ``read`` (per stream ≈ 2 frame sets)
_BUFFER_FRAMES = 8
_POLL_S = 0.05

_Item = tuple[str, float, np.ndarray]  # modality, timestamp (ms), pixels


class RealSenseRecordingSource(FrameSource):
    kind = "recording"
    live = False

    def __init__(self, config: RecordingConfig) -> None:
        super().__init__(config)
        self.config: RecordingConfig = config
        self._playback: Any = None
        self._sensors: list[Any] = []
        self._buffer: deque[_Item] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._started = False
        self._in_callback = 0  # SDK threads inside _on_frame right now
        self._converter: FrameSetConverter | None = None
        self._streams: tuple[str, ...] = ()
        self._group: dict[str, np.ndarray] = {}
        self._group_ts: float | None = None
        self._group_stamps: dict[str, float] = {}
        self._intrinsics: Intrinsics | None = None
        self._depth_scale = 0.001
        self.modalities: tuple[str, ...] = ()
        self.partial_sets = 0

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
        try:
            playback = rs.context().load_device(str(path)).as_playback()
        except RuntimeError as exc:
            raise SourceError(f"{self.description}: not a readable recording ({exc})") from exc
        self._playback = playback
        playback.set_real_time(bool(self.config.real_time))

        kind_of = {rs.stream.color: "rgb", rs.stream.depth: "depth", rs.stream.infrared: "ir"}
        by_modality: dict[str, tuple[Any, Any]] = {}  # modality → (sensor, profile)
        for sensor in playback.query_sensors():
            for profile in sensor.get_stream_profiles():
                modality = kind_of.get(profile.stream_type())
                if modality is None or modality in by_modality:
                    continue
                by_modality[modality] = (sensor, profile)
        available = tuple(m for m in MODALITIES if m in by_modality)
        wanted = tuple(m for m in self.config.modalities if m in available)
        missing = [m for m in self.config.modalities if m not in available]
        if not wanted:
            raise SourceError(
                f"{self.description}: none of the requested streams {self.config.modalities} "
                f"is in the recording (it has {list(available) or 'no video streams'})"
            )
        if missing:
            log.warning(
                "%s: stream(s) %s missing from the recording; delivering %s",
                self.description,
                ", ".join(missing),
                ", ".join(wanted),
            )
        if "depth" in available:
            self._depth_scale = float(by_modality["depth"][0].as_depth_sensor().get_depth_scale())
        color_profile = by_modality["rgb"][1] if "rgb" in available else None
        depth_profile = by_modality["depth"][1] if "depth" in available else None
        self._converter = FrameSetConverter(
            rs, wanted, self._depth_scale, color_profile=color_profile, depth_profile=depth_profile
        )
        grid = color_profile or depth_profile or by_modality[available[0]][1]
        self._intrinsics = to_intrinsics(grid.as_video_stream_profile().get_intrinsics())

        # Every recorded stream is started, wanted or not: the playback only ends promptly
        # when all its streams are consumed, and IR needs depth to be registered.
        opened: dict[int, tuple[Any, list[Any]]] = {}
        for modality in available:
            sensor, profile = by_modality[modality]
            opened.setdefault(id(sensor), (sensor, []))[1].append(profile)
        self._streams = available
        with self._cond:
            self._closing, self._started = False, False
            self._buffer.clear()
        self._group, self._group_ts, self._group_stamps = {}, None, {}
        # Start all sensors while paused so every stream starts at frame set 0.
        for sensor, profiles in opened.values():
            sensor.open(profiles)
            self._sensors.append(sensor)
        playback.pause()
        for sensor in self._sensors:
            sensor.start(self._on_frame)
        playback.resume()
        with self._cond:
            self._started = True  # from now on the callback may hold the playback back
        self.modalities = wanted
        log.info(
            "%s: streams %s, depth scale %g m, %s",
            self.description,
            ", ".join(available),
            self._depth_scale,
            "real time" if self.config.real_time else "as fast as possible",
        )

    def _on_frame(self, frame: Any) -> None:
        """SDK thread: copy the pixels out (releasing the frame) and hand them over."""
        with self._cond:
            if self._closing:
                return
            self._in_callback += 1
        try:
            self._deliver(frame)
        finally:
            with self._cond:
                self._in_callback -= 1
                self._cond.notify_all()

    def _deliver(self, frame: Any) -> None:
        rs = import_rs()
        try:
            stream = frame.profile.stream_type()
            if stream == rs.stream.color:
                item: _Item = ("rgb", frame.get_timestamp(), color_to_rgb(frame, rs))
            elif stream == rs.stream.depth:
                item = ("depth", frame.get_timestamp(), np.asanyarray(frame.get_data()).copy())
            elif stream == rs.stream.infrared:
                item = ("ir", frame.get_timestamp(), np.asanyarray(frame.get_data()).copy())
            else:
                return
        except Exception:  # never let an exception escape into the SDK's thread
            log.exception("%s: undecodable frame", self.description)
            return
        with self._cond:
            # The consumer is slower than the file: hold the playback back. Never while
            # starting up, though — open() itself waits on the playback thread.
            while self._started and not self._closing and len(self._buffer) >= _BUFFER_FRAMES:
                self._cond.wait(_POLL_S)
            if not self._closing:
                self._buffer.append(item)
                self._cond.notify_all()

    def _take_group(self) -> FrameBundle | None:
        if not self._group:
            return None
        group, stamps = self._group, self._group_stamps
        self._group, self._group_ts, self._group_stamps = {}, None, {}
        if len(group) < len(self._streams):
            self.partial_sets += 1
            log.debug("%s: frame set with only %s", self.description, sorted(group))
        assert self._converter is not None
        depth, ir = group.get("depth"), group.get("ir")
        if not self._converter.registered and "rgb" in group:
            depth, ir = self._converter.register_arrays(depth, ir)
        want = self.modalities
        bundle = FrameBundle(
            rgb=group.get("rgb") if "rgb" in want else None,
            depth=depth if "depth" in want else None,
            ir=ir if "ir" in want else None,
            depth_scale=self._depth_scale,
            timestamps={m: t for m, t in stamps.items() if m in want},
            intrinsics=self._intrinsics,
        )
        return bundle if bundle.present else None

    def _read(self, timeout: float | None) -> FrameBundle | None:
        rs = import_rs()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._cond:
                if not self._buffer:
                    self._cond.wait(_POLL_S)
                got = self._buffer.popleft() if self._buffer else None
                self._cond.notify_all()
            if got is None:
                if self._playback.current_status() == rs.playback_status.stopped:
                    with self._cond:
                        drained = not self._buffer
                    if drained:
                        bundle = self._take_group()
                        if bundle is not None:
                            return bundle
                        raise SourceEnded(f"{self.description}: end of recording")
                    continue
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                continue
            modality, ts, pixels = got
            ready = None
            if self._group_ts is not None and (ts != self._group_ts or modality in self._group):
                ready = self._take_group()  # a new instant begins
            self._group[modality] = pixels
            self._group_stamps[modality] = float(ts)
            self._group_ts = ts
            if ready is not None:
                return ready
            if len(self._group) == len(self._streams):
                bundle = self._take_group()
                if bundle is not None:
                    return bundle

    def _close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        # Stop the file reader, then let every callback in flight return before the
        # sensors stop: librealsense can crash when a playback sensor is stopped or freed
        # while its callback still runs (a rare segfault, seen once under load).
        if self._playback is not None:
            with contextlib.suppress(RuntimeError):
                self._playback.pause()
        deadline = time.monotonic() + 2.0
        with self._cond:
            while self._in_callback and time.monotonic() < deadline:
                self._cond.wait(_POLL_S)
        for sensor in self._sensors:
            for step in (sensor.stop, sensor.close):
                # already stopped (end of file) or never started
                with contextlib.suppress(RuntimeError):
                    step()
        self._sensors = []
        self._playback = None
        self._converter = None
        with self._cond:
            self._buffer.clear()
