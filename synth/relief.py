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
NOSE_TIP_INDEX = 1  # mesh index of the nose tip


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
    """(height mm, coverage, face outline) of a real head: the fitted face mesh; beyond it,
    up to the person's own silhouette (hair, ears, skull), a dome that continues the face's
    edge and falls off towards the silhouette; below the chin, the neck and shoulders.
    ``person`` is the soft person mask of the texture; ``depth_mm`` places the face's edge
    relative to the head's rotation plane (``h = 0``)."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    face = face_outline(shape, mesh)
    alpha = np.maximum((person > 0.5).astype(np.float32), face)
    chin_y = float(mesh[CHIN, 1])
    eyes = mesh[[33, 263], :2]
    ied = float(np.linalg.norm(eyes[1] - eyes[0])) * 0.8 + 1e-3
    cx = float(mesh[:, 0].mean())
    mh = mesh_height(shape, mesh, triangles) * mm_per_px
    inside = np.isfinite(mh)
    nose = float(-mesh[NOSE_TIP_INDEX, 2] * mm_per_px)
    mh = mh + (depth_mm + NOSE_TIP_MM - 95.0) - nose
    # Outside the mesh the head continues the mesh's edge: its heights carried outwards by
    # inpainting (smooth along the edge, no radial streaks), then falling off elliptically
    # as the silhouette comes nearer (t = 0 at the face's edge, 1 at the silhouette).
    outside = (~inside).astype(np.uint8)
    filled = cv2.inpaint(
        np.where(inside, mh, 0.0).astype(np.float32), outside, 3, cv2.INPAINT_TELEA
    )
    cont = cv2.GaussianBlur(filled, (0, 0), 0.25 * ied)
    d_face = cv2.distanceTransform(outside, cv2.DIST_L2, 5)
    d_edge = cv2.distanceTransform((alpha > 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    t = d_face / np.maximum(d_face + d_edge, 1e-3)
    dome = cont * np.sqrt(np.clip(1.0 - t * t, 0.0, 1.0))
    # Inside, a band along the mesh's edge blends the mesh into that continuation, so the
    # surface has no step and no crease where face meets skull (a crease shades as a band
    # in colour and NIR and folds the texture when the head turns: a synthetic cue).
    d_in = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 5)
    s = np.clip(d_in / (0.18 * ied), 0.0, 1.0)
    s = s * s * (3.0 - 2.0 * s)
    height = np.where(inside, s * mh + (1.0 - s) * cont, dome)
    # Neck (a cylinder behind the face) rising out of the shoulders further back, below
    # the jaw. The neck meets the shoulders where it sinks to their height (no groove),
    # and the head's continuation (hair, ears) comes down to them over a band below the
    # jaw line rather than in one step across the whole frame: a step or groove shades as
    # a dark line in NIR and colour that no real neck shows (a synthetic live cue).
    neck_half = 0.75 * ied
    neck_h = depth_mm * 0.45 * np.sqrt(np.clip(1 - ((x - cx) / neck_half) ** 2, 0, 1))
    body = cv2.GaussianBlur(
        np.maximum(neck_h, depth_mm * 0.2).astype(np.float32), (0, 0), 0.08 * ied
    )
    ramp = np.clip((y - (chin_y - 0.2 * ied)) / (0.35 * ied), 0.0, 1.0)
    ramp = np.where(inside, 0.0, ramp * ramp * (3.0 - 2.0 * ramp))
    height = np.where(ramp > 0, (1.0 - ramp) * height + ramp * np.minimum(height, body), height)
    # One smoothing over the whole head: no crease where the mesh meets the dome.
    height = cv2.GaussianBlur(height.astype(np.float32), (0, 0), 1.2)
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
