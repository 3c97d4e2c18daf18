"""Depth relief (height fields, mm towards the camera) of the things in front of a sensor.

A head is the identity's own fitted 3D face mesh (MediaPipe's 468 points, rasterised),
continued by an ellipsoid skull on the person's silhouette, with neck and shoulders.
Sheets (prints, screens) are flat or bent; masks reuse a face's mesh relief with their own
smoothing and offset. All functions work in texture pixels of an aligned face texture
(see ``faces.py``).
"""

from __future__ import annotations

import cv2
import numpy as np


def head_geometry(landmarks: np.ndarray) -> dict[str, float]:
    """Head centre and semi-axes (texture px) derived from the 5 landmarks."""
    le, re, nose, ml, mr = landmarks
    ied = float(np.linalg.norm(re - le))
    mid = (le + re) / 2
    mouth = (ml + mr) / 2
    chin_y = float(mouth[1] + 0.62 * ied)
    top_y = float(mid[1] - 1.45 * ied)
    return {
        "ied": ied,
        "cx": float(mid[0]),
        "cy": (chin_y + top_y) / 2,
        "ax": 1.12 * ied,
        "ay": (chin_y - top_y) / 2,
        "chin_y": chin_y,
        "eye_y": float(mid[1]),
        "nose_x": float(nose[0]),
        "nose_y": float(nose[1]),
        "mouth_x": float(mouth[0]),
        "mouth_y": float(mouth[1]),
    }


#: Height (mm) of the nose tip in front of the head's rotation plane (``h = 0``).
NOSE_TIP_MM = 115.0
CHIN = 152  # mesh index of the chin


def face_outline(shape: tuple[int, int], mesh: np.ndarray) -> np.ndarray:
    """Mask (1 inside) of the face: the convex hull of the mesh, forehead to chin."""
    out = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(np.round(mesh[:, :2] * 4).astype(np.int32))
    cv2.fillConvexPoly(out, hull, 1, lineType=cv2.LINE_8, shift=2)
    return out.astype(np.float32)


def landmark_outline(shape: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    """Face-sized ellipse (1 inside) from the 5 landmarks, for faces without a mesh
    (a photograph on a print or a screen)."""
    g = head_geometry(landmarks)
    out = np.zeros(shape, np.uint8)
    top = g["eye_y"] - 0.95 * g["ied"]
    centre = (int(round(g["cx"])), int(round((top + g["chin_y"]) / 2)))
    axes = (int(round(0.98 * g["ied"])), int(round((g["chin_y"] - top) / 2)))
    cv2.ellipse(out, centre, axes, 0, 0, 360, 1, -1)
    return out.astype(np.float32)


def mesh_height(shape: tuple[int, int], mesh: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """The mesh's depth rasterised over its triangles: mm-free "px towards the camera"
    (``-z``), NaN outside the mesh."""
    h, w = shape
    tri_id = np.full((h, w), -1, np.int32)
    pts = np.round(mesh[:, :2] * 4).astype(np.int32)
    for k, t in enumerate(triangles):
        cv2.fillConvexPoly(tri_id, pts[t], k, lineType=cv2.LINE_8, shift=2)
    ys, xs = np.nonzero(tri_id >= 0)
    out = np.full((h, w), np.nan, np.float32)
    if ys.size == 0:
        return out
    t = triangles[tri_id[ys, xs]]
    a, b, c = mesh[t[:, 0]], mesh[t[:, 1]], mesh[t[:, 2]]
    # Barycentric coordinates of each pixel in its triangle.
    v0, v1 = b[:, :2] - a[:, :2], c[:, :2] - a[:, :2]
    v2 = np.stack([xs, ys], 1).astype(np.float32) - a[:, :2]
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    den = np.where(np.abs(den) < 1e-6, 1e-6, den)
    wb = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    wc = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    wa = 1.0 - wb - wc
    # Pixels rasterised just outside their triangle, or of a sliver triangle, stay within
    # the range of its vertices.
    wgt = np.clip(np.stack([wa, wb, wc], 1), 0.0, 1.0)
    wgt /= np.maximum(wgt.sum(1, keepdims=True), 1e-6)
    out[ys, xs] = -(wgt[:, 0] * a[:, 2] + wgt[:, 1] * b[:, 2] + wgt[:, 2] * c[:, 2])
    return out


def head_relief(
    shape: tuple[int, int],
    mesh: np.ndarray,
    triangles: np.ndarray,
    person: np.ndarray,
    mm_per_px: float,
    depth_mm: float = 95.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(height mm, coverage, face outline) of a real head: the fitted face mesh, the rest of
    the head (hair, ears, skull) as an ellipsoid on the person's own silhouette, neck and
    shoulders behind it. ``person`` is the soft person mask of the texture."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    face = face_outline(shape, mesh)
    alpha = (person > 0.5).astype(np.float32)
    lm_eyes = mesh[[33, 263], :2]
    eye_y = float(lm_eyes[:, 1].mean())
    chin_y = float(mesh[CHIN, 1])
    ied = float(np.linalg.norm(lm_eyes[1] - lm_eyes[0])) * 0.8 + 1e-3
    # The skull: width from the silhouette at eye level, top from the silhouette above the eyes.
    row = alpha[int(np.clip(eye_y, 0, h - 1))]
    cols = np.nonzero(row > 0)[0]
    cx = float(mesh[:, 0].mean())
    half_w = float(max(cols.max() - cx, cx - cols.min())) if cols.size else 1.2 * ied
    half_w = float(np.clip(half_w, 1.0 * ied, 1.6 * ied))
    col = alpha[:, int(np.clip(cx, 0, w - 1))]
    above = np.nonzero(col[: int(eye_y)] > 0)[0]
    top_y = float(above.min()) if above.size else eye_y - 1.9 * ied
    top_y = float(np.clip(top_y, eye_y - 2.6 * ied, eye_y - 1.3 * ied))
    cy, ay = (top_y + chin_y) / 2, (chin_y - top_y) / 2
    r2 = ((x - cx) / half_w) ** 2 + ((y - cy) / ay) ** 2
    skull = depth_mm * np.sqrt(np.clip(1.0 - r2, 0, 1))
    mh = mesh_height(shape, mesh, triangles) * mm_per_px
    inside = np.isfinite(mh)
    nose = float(-mesh[1, 2] * mm_per_px)
    mh = mh + (depth_mm + NOSE_TIP_MM - 95.0) - nose
    # Extend the mesh's offset from the skull smoothly past the hull, fading out.
    diff = np.where(inside, mh - skull, 0.0).astype(np.float32)
    wgt = inside.astype(np.float32)
    sig = 0.25 * ied
    num = cv2.GaussianBlur(diff, (0, 0), sig)
    den = cv2.GaussianBlur(wgt, (0, 0), sig)
    ext = np.where(den > 1e-3, num / np.maximum(den, 1e-3), 0.0)
    dist = cv2.distanceTransform((~inside).astype(np.uint8), cv2.DIST_L2, 3)
    ext *= np.exp(-dist / (0.3 * ied))
    height = np.where(inside, mh, skull + ext).astype(np.float32)
    # Neck (a cylinder behind the face) and shoulders further back, where the skull ends.
    neck_half = 0.75 * ied
    neck_h = depth_mm * 0.45 * np.sqrt(np.clip(1 - ((x - cx) / neck_half) ** 2, 0, 1))
    below = (r2 >= 1.0) & (y > chin_y - 0.6 * ied)
    body = np.where(np.abs(x - cx) < neck_half, neck_h, depth_mm * 0.2)
    height = np.where(below & ~inside, np.maximum(body, 0.0), height)
    height = cv2.GaussianBlur(height, (0, 0), 0.6)
    height = np.where(inside, np.maximum(height, mh - 1.0), height).astype(np.float32)
    alpha = np.maximum(alpha, face)
    return height * alpha, alpha, face


def bend(
    shape: tuple[int, int],
    mm_per_px: float,
    radius_mm: float,
    axis: str = "vertical",
    center: tuple[float, float] | None = None,
) -> np.ndarray:
    """Height of a sheet bent around an axis (convex towards the camera), mm."""
    h, w = shape
    cx, cy = center if center is not None else ((w - 1) / 2, (h - 1) / 2)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    d = (x - cx) if axis == "vertical" else (y - cy)
    d_mm = np.clip(np.abs(d) * mm_per_px, 0, radius_mm * 0.8)
    return (-(radius_mm - np.sqrt(radius_mm**2 - d_mm**2))).astype(np.float32)


def eye_holes(shape: tuple[int, int], landmarks: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Mask (1 inside) of two eye-shaped holes at the eye landmarks."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    ied = float(np.linalg.norm(landmarks[1] - landmarks[0]))
    out = np.zeros((h, w), bool)
    for e in landmarks[:2]:
        out |= ((x - e[0]) / (0.23 * ied * scale)) ** 2 + (
            (y - e[1]) / (0.12 * ied * scale)
        ) ** 2 < 1
    return out.astype(np.float32)
