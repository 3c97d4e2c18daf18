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
    """Turns ``rs`` frame sets into registered :class:`FrameBundle` objects.

    ``color_profile``/``depth_profile`` (video stream profiles, None when absent) decide
    up front whether depth and IR must be registered to colour.
    """

    def __init__(
        self,
        rs: Any,
        modalities: tuple[str, ...],
        depth_scale: float,
        color_profile: Any = None,
        depth_profile: Any = None,
    ) -> None:
        self.rs = rs
        self.modalities = modalities
        self.depth_scale = depth_scale
        self._align: Any = None
        self._ir_maps: tuple[np.ndarray, np.ndarray] | None = None
        self._geometry: tuple[Any, Any, Any] | None = None  # colour intr, depth intr, extr c→d
        self._extr_dc: Any = None
        self.registered = True
        if color_profile is not None and depth_profile is not None:
            self.registered = not self._needs_registration(
                color_profile.as_video_stream_profile(), depth_profile.as_video_stream_profile()
            )
            if not self.registered:
                log.info("depth and IR will be registered to the colour grid")

    def _needs_registration(self, cp: Any, dp: Any) -> bool:
        ci, di = cp.get_intrinsics(), dp.get_intrinsics()
        same_grid = (ci.width, ci.height, ci.fx, ci.fy, ci.ppx, ci.ppy) == (
            di.width,
            di.height,
            di.fx,
            di.fy,
            di.ppx,
            di.ppy,
        )
        extr_cd = None
        try:
            extr = dp.get_extrinsics_to(cp)
            identity = np.allclose(extr.rotation, np.eye(3).ravel()) and np.allclose(
                extr.translation, 0.0
            )
            if not identity:
                extr_cd = cp.get_extrinsics_to(dp)
                self._extr_dc = extr
        except RuntimeError:  # no extrinsics recorded: treat the streams as co-located
            identity = True
        self._geometry = (ci, di, extr_cd)
        return not (same_grid and identity)

    def convert(self, frames: Any, ir_override: np.ndarray | None = None) -> FrameBundle:
        """One frame set (complete or partial) → bundle of the modalities it holds."""
        rs = self.rs
        want = self.modalities
        color = frames.first_or_default(rs.stream.color) if "rgb" in want else None
        depth = frames.first_or_default(rs.stream.depth)
        ir = None
        if "ir" in want and ir_override is None:
            ir = frames.get_infrared_frame(1) or frames.first_or_default(rs.stream.infrared)
        color = color if color else None
        depth = depth.as_depth_frame() if depth else None
        ir = ir if ir else None

        timestamps: dict[str, float] = {}
        intrinsics = None
        rgb = depth_array = None
        ir_array: np.ndarray | None = ir_override
        if color is not None:
            rgb = color_to_rgb(color.as_video_frame(), rs)
            timestamps["rgb"] = float(color.get_timestamp())
            intrinsics = to_intrinsics(color.profile.as_video_stream_profile().get_intrinsics())
        if depth is not None:
            timestamps["depth"] = float(depth.get_timestamp())
            if color is None:
                intrinsics = to_intrinsics(depth.profile.as_video_stream_profile().get_intrinsics())
            elif not self.registered:
                if self._align is None:
                    self._align = rs.align(rs.stream.color)
                depth = self._align.process(frames).get_depth_frame()
            depth_array = np.asanyarray(depth.get_data()).copy()
        if ir is not None:
            timestamps["ir"] = float(ir.get_timestamp())
            ir_array = np.asanyarray(ir.get_data()).copy()
        if ir_array is not None and rgb is not None and not self.registered:
            ir_array = self._register_ir(ir_array, depth_array)
        return FrameBundle(
            rgb=rgb,
            depth=depth_array if "depth" in want else None,
            ir=ir_array,
            depth_scale=self.depth_scale,
            timestamps=timestamps,
            intrinsics=intrinsics,
        )

    def register_arrays(
        self, depth: np.ndarray | None, ir: np.ndarray | None
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Depth and IR arrays (depth grid) → colour grid, without SDK frames (numpy)."""
        if self.registered or depth is None or self._geometry is None:
            return depth, ir if self.registered else None
        ci, di, _ = self._geometry
        aligned = align_depth_to_color(depth, di, ci, self._extr_dc, self.depth_scale)
        return aligned, None if ir is None else self._register_ir(ir, aligned)

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


def _transform(extr: Any, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, ...]:
    if extr is None:
        return x, y, z
    r = np.asarray(extr.rotation, dtype=np.float32).reshape(3, 3, order="F")
    t = np.asarray(extr.translation, dtype=np.float32)
    return (
        r[0, 0] * x + r[0, 1] * y + r[0, 2] * z + t[0],
        r[1, 0] * x + r[1, 1] * y + r[1, 2] * z + t[1],
        r[2, 0] * x + r[2, 1] * y + r[2, 2] * z + t[2],
    )


def align_depth_to_color(
    depth: np.ndarray, di: Any, ci: Any, extr_dc: Any, depth_scale: float
) -> np.ndarray:
    """Depth (its own grid) → colour grid, like ``rs.align``: every depth pixel is
    deprojected, moved into the colour camera and splatted over the colour pixels its
    footprint covers; where several land on one pixel the nearest wins."""
    h, w = depth.shape
    v, u = np.nonzero(depth)
    raw = depth[v, u]
    z = raw.astype(np.float32) * np.float32(depth_scale)
    out = np.zeros((ci.height, ci.width), dtype=depth.dtype)
    if raw.size == 0:
        return out
    x = (u.astype(np.float32) - di.ppx) / di.fx * z
    y = (v.astype(np.float32) - di.ppy) / di.fy * z
    x, y, z = _transform(extr_dc, x, y, z)
    valid = z > 0
    x, y, z, raw = x[valid], y[valid], z[valid], raw[valid]
    pu = x / z * ci.fx + ci.ppx
    pv = y / z * ci.fy + ci.ppy
    # footprint of one depth pixel on the colour grid (≥ 1 pixel)
    reach_u = max(1, int(np.ceil(ci.fx / di.fx)))
    reach_v = max(1, int(np.ceil(ci.fy / di.fy)))
    order = np.argsort(-z, kind="stable")  # far first, so the nearest is written last
    pu, pv, raw = pu[order], pv[order], raw[order]
    for dv in range(reach_v):
        for du in range(reach_u):
            cu = np.floor(pu - (reach_u - 1) / 2.0 + du + 0.5).astype(np.int64)
            cv = np.floor(pv - (reach_v - 1) / 2.0 + dv + 0.5).astype(np.int64)
            ok = (cu >= 0) & (cu < ci.width) & (cv >= 0) & (cv < ci.height)
            out[cv[ok], cu[ok]] = raw[ok]
    return out
