"""Camera geometry of the generator: pinhole camera, rigid poses, and projecting a textured
height-field surface (a :class:`~synth.layers.Layer`) into a registered frame.

Rendering splats the surface's texture coordinates forward with a z-buffer (so a turned
head's nose correctly hides its cheek), fills sub-pixel gaps, refines each pixel's texture
coordinate on its own viewing ray, then samples every texture channel with that one map.
Depth comes from the same ray intersection, which is what keeps RGB, depth and IR
registered pixel for pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from sensors.bundle import Intrinsics

#: The generator's pinhole camera is the capture contract's :class:`Intrinsics` (one
#: definition; ``Camera.from_fov`` builds one from a field of view).
Camera = Intrinsics


@dataclass(frozen=True)
class Pose:
    """Object → camera: ``P_cam = R @ P_obj + T`` (mm); object z points away from the camera."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    tx: float = 0.0
    ty: float = 0.0
    tz: float = 600.0

    @property
    def rotation(self) -> np.ndarray:
        y, p, r = np.radians([self.yaw, self.pitch, self.roll])
        Ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
        Rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
        Rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
        return Rz @ Ry @ Rx

    @property
    def translation(self) -> np.ndarray:
        return np.array([self.tx, self.ty, self.tz])

    def moved(self, **delta: float) -> Pose:
        vals = {k: getattr(self, k) + delta.get(k, 0.0) for k in ("yaw", "pitch", "roll")}
        vals.update({k: getattr(self, k) + delta.get(k, 0.0) for k in ("tx", "ty", "tz")})
        return Pose(**vals)


def surface_normals(height: np.ndarray, mm_per_px: float) -> np.ndarray:
    """Unit normals (object frame, pointing at the viewer) of a height field in mm."""
    hy, hx = np.gradient(height.astype(np.float32), mm_per_px)
    n = np.stack([-hx, -hy, -np.ones_like(hx)], axis=-1)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    return n.astype(np.float32)


def object_points(
    uv: np.ndarray, h: np.ndarray, origin: tuple[float, float], mm_per_px: float
) -> np.ndarray:
    """Texture coordinates (N×2) and heights (N) → object-frame points (N×3, mm)."""
    return np.stack(
        [(uv[:, 0] - origin[0]) * mm_per_px, (uv[:, 1] - origin[1]) * mm_per_px, -h], axis=1
    ).astype(np.float32)


def project(points_obj: np.ndarray, pose: Pose, cam: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Object points (N×3) → pixel coordinates (N×2) and camera depth z (N, mm)."""
    R = pose.rotation.astype(np.float32)
    P = points_obj.astype(np.float32) @ R.T + pose.translation.astype(np.float32)
    z = P[:, 2]
    x = cam.fx * P[:, 0] / z + cam.cx
    y = cam.fy * P[:, 1] / z + cam.cy
    return np.stack([x, y], axis=1), z


def _sample(img: np.ndarray, mx: np.ndarray, my: np.ndarray, nearest: bool = False) -> np.ndarray:
    return cv2.remap(
        img,
        mx.astype(np.float32),
        my.astype(np.float32),
        cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def _sample_points(img: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear samples of a single-channel image at N points (remap needs a 2-D map)."""
    n = u.size
    cols = 1024
    rows = max(1, -(-n // cols))
    mu = np.zeros(rows * cols, np.float32)
    mv = np.zeros(rows * cols, np.float32)
    mu[:n], mv[:n] = u, v
    out = _sample(img, mu.reshape(rows, cols), mv.reshape(rows, cols))
    return out.reshape(-1)[:n]


@dataclass
class Splat:
    """Per-pixel result of projecting one layer, inside the frame region ``roi`` it covers."""

    roi: tuple[slice, slice]  # (rows, cols) of the frame
    mask: np.ndarray  # h×w bool
    z: np.ndarray  # h×w float32 mm (inf where not covered)
    u: np.ndarray  # h×w float32 texture x
    v: np.ndarray  # h×w float32 texture y
    normal: np.ndarray  # h×w×3 camera-frame unit normals (towards the camera)


def _ray_uv(
    px: np.ndarray,
    py: np.ndarray,
    h: np.ndarray,
    pose: Pose,
    cam: Camera,
    origin: tuple[float, float],
    mm_per_px: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Texture coordinate where pixel rays meet the plane at object depth ``-h``; and z."""
    Rt = pose.rotation.T
    dx = (px - cam.cx) / cam.fx
    dy = (py - cam.cy) / cam.fy
    # R^T d for d = (dx, dy, 1), written out per component (cheaper than stacking).
    d0 = Rt[0, 0] * dx + Rt[0, 1] * dy + Rt[0, 2]
    d1 = Rt[1, 0] * dx + Rt[1, 1] * dy + Rt[1, 2]
    d2 = Rt[2, 0] * dx + Rt[2, 1] * dy + Rt[2, 2]
    tr = Rt @ pose.translation  # R^T T
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (-h + tr[2]) / d2
    a = t * d0 - tr[0]
    b = t * d1 - tr[1]
    return a / mm_per_px + origin[0], b / mm_per_px + origin[1], t


def _visible_texture_box(
    height: np.ndarray,
    alpha: np.ndarray,
    origin: tuple[float, float],
    mm_per_px: float,
    pose: Pose,
    cam: Camera,
) -> tuple[int, int, int, int] | None:
    """Texture bounding box of the part of a layer that projects into the frame."""
    th, tw = height.shape
    c = 8
    gv, gu = np.mgrid[0:th:c, 0:tw:c]
    gu, gv = gu.ravel().astype(np.float32), gv.ravel().astype(np.float32)
    keep = alpha[gv.astype(int), gu.astype(int)] > 0.5
    if not keep.any():
        return None
    gu, gv = gu[keep], gv[keep]
    hs = height[gv.astype(int), gu.astype(int)]
    pts, z = project(object_points(np.stack([gu, gv], 1), hs, origin, mm_per_px), pose, cam)
    m = 2 * c * max(1.0, cam.fx * mm_per_px / max(float(z.min()), 50.0))
    inside = (
        (pts[:, 0] > -m)
        & (pts[:, 0] < cam.width + m)
        & (pts[:, 1] > -m)
        & (pts[:, 1] < cam.height + m)
        & (z > 1.0)
    )
    if not inside.any():
        return None
    u0 = max(0, int(gu[inside].min()) - c)
    v0 = max(0, int(gv[inside].min()) - c)
    return u0, min(tw, int(gu[inside].max()) + c + 1), v0, min(th, int(gv[inside].max()) + c + 1)


def render_surface(
    height: np.ndarray,
    alpha: np.ndarray,
    origin: tuple[float, float],
    mm_per_px: float,
    pose: Pose,
    cam: Camera,
    normals: np.ndarray | None = None,
) -> Splat | None:
    """Project a textured height field; ``None`` when it falls outside the frame."""
    H, W = cam.height, cam.width
    height = height.astype(np.float32)
    alpha = alpha.astype(np.float32)
    box = _visible_texture_box(height, alpha, origin, mm_per_px, pose, cam)
    if box is None:
        return None
    u0, u1, v0, v1 = box
    # Texture sampling step so that every frame pixel receives about one sample or more;
    # the gap filling below closes what is left.
    px_per_tex = cam.fx * mm_per_px / max(pose.tz - float(height.max()), 50.0)
    step = float(np.clip(0.85 / px_per_tex, 0.3, 2.0))
    gu, gv = np.meshgrid(
        np.arange(u0, u1, step, dtype=np.float32), np.arange(v0, v1, step, dtype=np.float32)
    )
    a_s = _sample(alpha, gu, gv)
    keep = a_s > 0.5
    gu, gv = gu[keep], gv[keep]
    if gu.size == 0:
        return None
    hs = _sample_points(height, gu, gv)
    pts, z = project(object_points(np.stack([gu, gv], 1), hs, origin, mm_per_px), pose, cam)
    xi = np.round(pts[:, 0]).astype(np.int64)
    yi = np.round(pts[:, 1]).astype(np.int64)
    ok = (xi >= 0) & (xi < W) & (yi >= 0) & (yi < H) & (z > 1.0)
    if not ok.any():
        return None
    xi, yi, z, gu, gv = xi[ok], yi[ok], z[ok], gu[ok], gv[ok]
    x0, x1, y0, y1 = int(xi.min()), int(xi.max()) + 1, int(yi.min()), int(yi.max()) + 1
    h, w = y1 - y0, x1 - x0
    idx = (yi - y0) * w + (xi - x0)
    # One sort on (pixel, depth): the first sample of each pixel is the nearest one.
    zq = np.clip(z * 16.0, 0, 2**30).astype(np.int64)
    order = np.argsort(idx * (2**31) + zq)
    isorted = idx[order]
    first = np.ones(isorted.size, bool)
    first[1:] = isorted[1:] != isorted[:-1]
    sel = order[first]
    uniq = isorted[first]
    flat_u = np.zeros(h * w, np.float32)
    flat_v = np.zeros(h * w, np.float32)
    flat_c = np.zeros(h * w, np.float32)
    flat_u[uniq], flat_v[uniq], flat_c[uniq] = gu[sel], gv[sel], 1.0
    umap, vmap, cov = flat_u.reshape(h, w), flat_v.reshape(h, w), flat_c.reshape(h, w)
    # Fill sub-pixel gaps from covered neighbours (never grows the silhouette much).
    k = np.ones((3, 3), np.float32)
    for _ in range(2):
        closed = cv2.morphologyEx(cov, cv2.MORPH_CLOSE, k.astype(np.uint8)) > 0
        gap = closed & (cov == 0)
        if not gap.any():
            break
        n = cv2.filter2D(cov, -1, k, borderType=cv2.BORDER_CONSTANT)
        with np.errstate(divide="ignore", invalid="ignore"):
            fu = cv2.filter2D(umap * cov, -1, k, borderType=cv2.BORDER_CONSTANT) / n
            fv = cv2.filter2D(vmap * cov, -1, k, borderType=cv2.BORDER_CONSTANT) / n
        gap &= n > 0
        umap[gap], vmap[gap], cov[gap] = fu[gap], fv[gap], 1.0
    mask = cov > 0
    # Refine on each pixel's own ray: exact sub-pixel texture coordinate and depth.
    py, px = np.nonzero(mask)
    uu, vv = umap[py, px], vmap[py, px]
    pxf, pyf = (px + x0).astype(np.float64), (py + y0).astype(np.float64)
    for _ in range(2):
        hh = _sample_points(height, uu, vv)
        nu, nv, _t = _ray_uv(pxf, pyf, hh.astype(np.float64), pose, cam, origin, mm_per_px)
        # A steep slope (nose side at large yaw) can jump branches: keep small corrections.
        small = (np.abs(nu - uu) < 2.0) & (np.abs(nv - vv) < 2.0)
        uu = np.where(small, nu, uu).astype(np.float32)
        vv = np.where(small, nv, vv).astype(np.float32)
    hh = _sample_points(height, uu, vv)
    _, _, t = _ray_uv(pxf, pyf, hh.astype(np.float64), pose, cam, origin, mm_per_px)
    umap[py, px], vmap[py, px] = uu, vv
    am = _sample(alpha, umap, vmap)
    zmap = np.full((h, w), np.inf, np.float32)
    zmap[py, px] = t.astype(np.float32)
    mask &= (am > 0.5) & np.isfinite(zmap) & (zmap > 1.0)
    zmap[~mask] = np.inf
    if normals is None:
        normals = surface_normals(height[v0:v1, u0:u1], mm_per_px)
        nt = _sample(normals, umap - u0, vmap - v0)
    else:
        nt = _sample(normals, umap, vmap)
    nc = nt @ pose.rotation.T.astype(np.float32)
    nc /= np.maximum(np.sqrt((nc * nc).sum(-1, keepdims=True)), 1e-6)
    return Splat((slice(y0, y1), slice(x0, x1)), mask, zmap, umap, vmap, nc.astype(np.float32))


def sample_texture(img: np.ndarray, splat: Splat) -> np.ndarray:
    """Sample a texture channel (H_t×W_t[×C]) through a splat's texture-coordinate map."""
    return _sample(img.astype(np.float32), splat.u, splat.v)
