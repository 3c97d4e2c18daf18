"""The crop convention shared by training data and serving.

A face crop is the similarity transform that maps the five landmarks (left eye, right
eye, nose tip, left mouth corner, right mouth corner — *image* left/right, i.e. the
subject's right eye is ``left eye``) onto a canonical template, scaled so the face keeps
context around it (hair, chin, the border of a print or a screen bezel are PAD cues).

The same matrix is applied to every registered modality: bilinear for RGB and IR,
nearest-neighbour for depth so depth is never blended across an edge.
"""

from __future__ import annotations

import cv2
import numpy as np

#: ArcFace-style 5-point template on a 112×112 grid, as fractions of the side.
_TEMPLATE_112 = (
    np.array(
        [
            [38.2946, 51.6963],
            [73.5318, 51.5014],
            [56.0252, 71.7366],
            [41.5493, 92.3655],
            [70.7299, 92.2041],
        ],
        dtype=np.float64,
    )
    / 112.0
)

#: Fraction of the tight template the face keeps; the rest of the crop is context.
FACE_SCALE = 0.72
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


# -- where the face lies in an aligned crop -------------------------------------------------
# One definition for training, preprocessing and the quality checks: regions as fractions of
# the crop side, drawn around the template at FACE_SCALE (landmarks: eyes at y 0.47, nose
# tip 0.60, mouth 0.73; x 0.39-0.61) and scaled about the crop centre with ``face_scale``.
_FACE_ELLIPSE = (0.5, 0.53, 0.36, 0.48)  # centre x, y; semi-axes x, y: forehead to chin
_FACE_FEATURES_BOX = (0.25, 0.25, 0.75, 0.85)  # brows to chin, cheek to cheek
_FACE_DEPTH_SQUARE = 0.4  # central square side whose depth is the face's depth


def _scaled(v: float, face_scale: float) -> float:
    return 0.5 + (v - 0.5) * face_scale / FACE_SCALE


def face_ellipse(face_scale: float = FACE_SCALE) -> tuple[float, float, float, float]:
    """The whole face (centre x, y and semi-axes x, y): the target of the pixel-map head."""
    cx, cy, ax, ay = _FACE_ELLIPSE
    k = face_scale / FACE_SCALE
    return _scaled(cx, face_scale), _scaled(cy, face_scale), ax * k, ay * k


def face_ellipse_mask(size: int, face_scale: float = FACE_SCALE) -> np.ndarray:
    """:func:`face_ellipse` on a ``size``×``size`` grid: float32, 1 inside, 0 outside."""
    cx, cy, ax, ay = face_ellipse(face_scale)
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    yy, xx = np.meshgrid(c, c, indexing="ij")
    return (((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1.0).astype(np.float32)


def face_features_box(face_scale: float = FACE_SCALE) -> tuple[float, float, float, float]:
    """Brows to chin, cheek to cheek (x0, y0, x1, y1): where quality measures sharpness and
    brightness and checks that the face is inside the frame."""
    x0, y0, x1, y1 = _FACE_FEATURES_BOX
    return (
        _scaled(x0, face_scale),
        _scaled(y0, face_scale),
        _scaled(x1, face_scale),
        _scaled(y1, face_scale),
    )


def face_depth_square(face_scale: float = FACE_SCALE) -> float:
    """Side (fraction) of the central square whose median valid depth is the face depth
    (the reference of depth normalisation: part of the preprocessing contract)."""
    return _FACE_DEPTH_SQUARE * face_scale / FACE_SCALE


def template(size: int, face_scale: float = FACE_SCALE) -> np.ndarray:
    """Canonical landmark positions (5×2, x/y) in a ``size``×``size`` crop."""
    return ((_TEMPLATE_112 - 0.5) * face_scale + 0.5) * size


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation), Umeyama 1991.

    Returns the 2×3 matrix mapping ``src`` points onto ``dst`` points.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"need matching N×2 point sets, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    U, S, Vt = np.linalg.svd(cov)
    D = np.eye(2)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        D[1, 1] = -1
    R = U @ D @ Vt
    var_s = (s0**2).sum() / len(src)
    scale = float(np.trace(np.diag(S) @ D) / var_s) if var_s > 0 else 1.0
    M = np.zeros((2, 3))
    M[:, :2] = scale * R
    M[:, 2] = mu_d - scale * R @ mu_s
    return M


def alignment_matrix(
    landmarks: np.ndarray, size: int, face_scale: float = FACE_SCALE
) -> np.ndarray:
    """2×3 matrix that maps frame pixels to the ``size``×``size`` crop."""
    return similarity_transform(
        np.asarray(landmarks, dtype=np.float64).reshape(5, 2), template(size, face_scale)
    )


def warp(image: np.ndarray, M: np.ndarray, size: int, *, nearest: bool = False) -> np.ndarray:
    """Apply a 2×3 crop matrix; pixels outside the frame become 0 (a depth hole for depth)."""
    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.warpAffine(
        image, M, (size, size), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def transform_points(points: np.ndarray, M: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return pts @ M[:, :2].T + M[:, 2]


def crop_modalities(
    landmarks: np.ndarray,
    size: int,
    rgb: np.ndarray | None = None,
    depth: np.ndarray | None = None,
    ir: np.ndarray | None = None,
    face_scale: float = FACE_SCALE,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None, np.ndarray]:
    """Crop every present, registered modality with one transform; returns (rgb, depth, ir, M)."""
    M = alignment_matrix(landmarks, size, face_scale)
    return (
        warp(rgb, M, size) if rgb is not None else None,
        warp(depth, M, size, nearest=True) if depth is not None else None,
        warp(ir, M, size) if ir is not None else None,
        M,
    )
