"""Depth relief (height fields, mm towards the camera) of the things in front of a sensor.

A head is a flattened ellipsoid with a nose, eye sockets, brow, cheeks, lips and chin
placed on the identity's own landmarks, plus neck and shoulders. Sheets (prints, screens)
are flat or bent; masks reuse the face relief with their own smoothing and depth scale.
All functions work in texture pixels of an aligned face texture (see ``faces.py``).
"""

from __future__ import annotations

import numpy as np


def _gauss(x: np.ndarray, y: np.ndarray, cx: float, cy: float, sx: float, sy: float) -> np.ndarray:
    return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


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


def face_features(
    shape: tuple[int, int], landmarks: np.ndarray, mm_per_px: float, nose_mm: float = 24.0
) -> np.ndarray:
    """Relief of the facial features alone (nose, sockets, brow, cheeks, lips, chin), mm."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    g = head_geometry(landmarks)
    ied = g["ied"]
    le, re = landmarks[0], landmarks[1]
    out = np.zeros((h, w), np.float32)
    # Nose: a ridge from the bridge to the tip, rising towards the tip, falling fast below.
    t = np.clip((y - g["eye_y"]) / max(g["nose_y"] - g["eye_y"], 1.0), 0.0, 1.0)
    ridge_x = g["cx"] + (g["nose_x"] - g["cx"]) * t
    ridge = np.exp(-0.5 * ((x - ridge_x) / (0.14 * ied + 0.1 * ied * t)) ** 2)
    below = np.exp(-0.5 * (np.maximum(y - g["nose_y"], 0) / (0.13 * ied)) ** 2)
    # The bridge fades in smoothly between the brows (a hard step would tear the texture).
    above = 1.0 / (1.0 + np.exp(-(y - (g["eye_y"] - 0.25 * ied)) / (0.06 * ied)))
    out += nose_mm * ridge * (0.3 + 0.7 * t**1.5) * below * above
    out += (
        0.35 * nose_mm * _gauss(x, y, g["nose_x"], g["nose_y"] - 0.05 * ied, 0.28 * ied, 0.14 * ied)
    )
    # Eye sockets and brow.
    for e in (le, re):
        out -= 9.0 * _gauss(x, y, e[0], e[1], 0.24 * ied, 0.17 * ied)
        out += 4.0 * _gauss(x, y, e[0], e[1] - 0.38 * ied, 0.3 * ied, 0.1 * ied)
        out += 1.5 * _gauss(x, y, e[0], e[1], 0.08 * ied, 0.07 * ied)  # the eyeball itself
    # Cheekbones, lips, chin.
    for sx in (-1, 1):
        out += 6.0 * _gauss(
            x, y, g["cx"] + sx * 0.55 * ied, g["eye_y"] + 0.6 * ied, 0.3 * ied, 0.3 * ied
        )
    out += 5.0 * _gauss(x, y, g["mouth_x"], g["mouth_y"], 0.42 * ied, 0.13 * ied)
    out -= 3.0 * _gauss(x, y, g["mouth_x"], g["mouth_y"] + 0.28 * ied, 0.35 * ied, 0.08 * ied)
    out += 5.0 * _gauss(x, y, g["mouth_x"], g["chin_y"] - 0.2 * ied, 0.35 * ied, 0.2 * ied)
    return out


def head_relief(
    shape: tuple[int, int],
    landmarks: np.ndarray,
    mm_per_px: float,
    depth_mm: float = 95.0,
    nose_mm: float = 24.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(height mm, head alpha, face-oval alpha) of a real head with neck and shoulders."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    g = head_geometry(landmarks)
    ied = g["ied"]
    r2 = ((x - g["cx"]) / g["ax"]) ** 2 + ((y - g["cy"]) / g["ay"]) ** 2
    inside = r2 < 1.0
    # A super-ellipsoid: the face front is flatter than a sphere, the sides fall off fast.
    ell = depth_mm * np.power(np.clip(1.0 - np.power(np.clip(r2, 0, 1), 1.25), 0, 1), 0.5)
    height = np.where(inside, ell, 0.0).astype(np.float32)
    height += np.where(inside, face_features(shape, landmarks, mm_per_px, nose_mm), 0.0)
    # Neck (a cylinder ~40 mm behind the face front) and shoulders further back.
    neck_half = 0.62 * ied
    neck = (np.abs(x - g["cx"]) < neck_half) & (y > g["chin_y"] - 0.4 * ied)
    neck_h = depth_mm * 0.45 * np.sqrt(np.clip(1 - ((x - g["cx"]) / neck_half) ** 2, 0, 1))
    sh_top = g["chin_y"] + 0.45 * ied
    shoulders = (y > sh_top) & (np.abs(x - g["cx"]) < neck_half + (y - sh_top) * 2.2)
    sh_h = np.full((h, w), depth_mm * 0.2, np.float32)
    body = np.where(neck & ~inside, neck_h, 0.0)
    body = np.where(shoulders & ~inside & ~neck, sh_h, body)
    height = np.where(inside, height, body).astype(np.float32)
    alpha = (inside | neck | shoulders).astype(np.float32)
    face_r2 = ((x - g["cx"]) / (0.95 * g["ax"])) ** 2 + (
        (y - (g["cy"] + 0.18 * g["ay"])) / (0.82 * g["ay"])
    ) ** 2
    face = (face_r2 < 1.0).astype(np.float32)
    return height, alpha, face


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
