"""pyrealsense2 frame sets → FrameBundles; shared by the live and recording adapters.

Registration: the model wants every modality on the colour pixel grid. ``rs.align`` maps
depth onto colour, but not infrared; the left IR imager shares the depth grid, so IR is
registered by the inverse mapping — every colour pixel with an aligned depth is
deprojected (colour intrinsics), moved into the depth camera (extrinsics) and projected
(depth intrinsics) to sample IR there with ``cv2.remap``. Streams that are already
registered (same intrinsics, identity extrinsics — e.g. files written by
:mod:`sensors.recorder`) are passed through untouched.
"""

from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np

from sensors.bundle import FrameBundle, Intrinsics

log = logging.getLogger(__name__)


def import_rs() -> Any:
    """Import pyrealsense2 with an actionable message when it (or libusb) is missing."""
    try:
        import pyrealsense2 as rs
    except ImportError as exc:  # pragma: no cover - depends on the machine
        from sensors.base import SourceError

        raise SourceError(
            f"pyrealsense2 is not usable ({exc}); install it with "
            "pip install 'flexlive[realsense]' (and Debian's libusb-1.0-0)"
        ) from exc
    return rs


def to_intrinsics(rs_intr: Any) -> Intrinsics:
    return Intrinsics(
        int(rs_intr.width),
        int(rs_intr.height),
        float(rs_intr.fx),
        float(rs_intr.fy),
        float(rs_intr.ppx),
        float(rs_intr.ppy),
    )


def color_to_rgb(frame: Any, rs: Any) -> np.ndarray:
    """A colour frame as uint8 H×W×3 in RGB order (copied out of the SDK's buffer)."""
    data = np.asanyarray(frame.get_data())
    fmt = frame.profile.format()
    if fmt == rs.format.rgb8:
        return data.copy()
    if fmt == rs.format.bgr8:
        return np.ascontiguousarray(data[:, :, ::-1])
    if fmt == rs.format.rgba8:
        return np.ascontiguousarray(data[:, :, :3])
    if fmt == rs.format.bgra8:
        return np.ascontiguousarray(data[:, :, 2::-1])
    if fmt == rs.format.yuyv:
        yuyv = data.reshape(frame.get_height(), frame.get_width(), 2)
        return cv2.cvtColor(yuyv, cv2.COLOR_YUV2RGB_YUYV)
    raise ValueError(f"unsupported colour format {fmt}")


class FrameSetConverter:
    """Turns one ``rs.composite_frame`` into a registered :class:`FrameBundle`."""

    def __init__(self, rs: Any, modalities: tuple[str, ...], depth_scale: float) -> None:
        self.rs = rs
        self.modalities = modalities
        self.depth_scale = depth_scale
        self._align: Any = None
        self._registered: bool | None = None  # decided on the first frame set with colour
        self._ir_maps: tuple[np.ndarray, np.ndarray] | None = None
        self._geometry: tuple[Any, Any, Any] | None = None  # colour intr, depth intr, extr c→d

    def _needs_registration(self, color: Any, depth: Any) -> bool:
        cp = color.profile.as_video_stream_profile()
        dp = depth.profile.as_video_stream_profile()
        ci, di = cp.get_intrinsics(), dp.get_intrinsics()
        same_grid = (ci.width, ci.height, ci.fx, ci.fy, ci.ppx, ci.ppy) == (
            di.width,
            di.height,
            di.fx,
            di.fy,
            di.ppx,
            di.ppy,
        )
        try:
            extr = dp.get_extrinsics_to(cp)
            identity = np.allclose(extr.rotation, np.eye(3).ravel()) and np.allclose(
                extr.translation, 0.0
            )
        except RuntimeError:  # no extrinsics recorded: only a same-grid file is usable
            identity = True
        if not (same_grid and identity):
            self._geometry = (ci, di, cp.get_extrinsics_to(dp) if not identity else None)
        return not (same_grid and identity)

    def convert(self, frames: Any, ir_override: np.ndarray | None = None) -> FrameBundle:
        rs = self.rs
        want = self.modalities
        color = frames.get_color_frame() if "rgb" in want else None
        depth = frames.get_depth_frame()
        ir = frames.get_infrared_frame(1) if "ir" in want and ir_override is None else None
        if ir is not None and not ir:
            ir = frames.get_infrared_frame()
        color = color if color else None
        depth = depth if depth else None
        ir = ir if ir else None

        ir_array: np.ndarray | None = ir_override
        if ir is not None:
            ir_array = np.asanyarray(ir.get_data()).copy()

        intrinsics = None
        timestamps: dict[str, float] = {}
        rgb = depth_array = None
        if color is not None:
            rgb = color_to_rgb(color, rs)
            timestamps["rgb"] = float(color.get_timestamp())
            intrinsics = to_intrinsics(color.profile.as_video_stream_profile().get_intrinsics())
        if depth is not None:
            timestamps["depth"] = float(depth.get_timestamp())
            if color is not None:
                if self._registered is None:
                    self._registered = not self._needs_registration(color, depth)
                    if not self._registered:
                        log.info("registering depth and IR to the colour grid (rs.align)")
                if not self._registered:
                    if self._align is None:
                        self._align = rs.align(rs.stream.color)
                    aligned = self._align.process(frames)
                    depth = aligned.get_depth_frame()
            else:
                intrinsics = to_intrinsics(depth.profile.as_video_stream_profile().get_intrinsics())
            depth_array = np.asanyarray(depth.get_data()).copy()
        if ir is not None:
            timestamps["ir"] = float(ir.get_timestamp())
        if ir_array is not None and rgb is not None:
            if self._registered is False:
                ir_array = self._register_ir(ir_array, depth_array)
            if ir_array is not None and ir_array.shape[:2] != rgb.shape[:2]:
                log.warning("dropping IR: %s grid differs from colour", ir_array.shape)
                ir_array = None
        return FrameBundle(
            rgb=rgb,
            depth=depth_array if "depth" in want else None,
            ir=ir_array,
            depth_scale=self.depth_scale,
            timestamps=timestamps,
            intrinsics=intrinsics,
        )

    def _register_ir(self, ir: np.ndarray, aligned_depth: np.ndarray | None) -> np.ndarray | None:
        """IR (depth grid) → colour grid, by the aligned depth; None when no depth to do it."""
        if aligned_depth is None or self._geometry is None:
            log.warning("IR is not on the colour grid and there is no depth to register it")
            return None
        ci, di, extr = self._geometry
        h, w = aligned_depth.shape
        if self._ir_maps is None:
            u, v = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            self._ir_maps = ((u - ci.ppx) / ci.fx, (v - ci.ppy) / ci.fy)
        rx, ry = self._ir_maps
        z = aligned_depth.astype(np.float32) * np.float32(self.depth_scale)
        x, y = rx * z, ry * z
        if extr is not None:
            r = np.asarray(extr.rotation, dtype=np.float32).reshape(3, 3, order="F")
            t = np.asarray(extr.translation, dtype=np.float32)
            x, y, z = (
                r[0, 0] * x + r[0, 1] * y + r[0, 2] * z + t[0],
                r[1, 0] * x + r[1, 1] * y + r[1, 2] * z + t[1],
                r[2, 0] * x + r[2, 1] * y + r[2, 2] * z + t[2],
            )
        valid = z > 0
        zs = np.where(valid, z, np.float32(1.0))
        map_x = np.where(valid, x / zs * di.fx + di.ppx, -1).astype(np.float32)
        map_y = np.where(valid, y / zs * di.fy + di.ppy, -1).astype(np.float32)
        out: np.ndarray = cv2.remap(
            ir, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
        return out
