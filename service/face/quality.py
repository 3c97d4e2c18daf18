"""Per-face quality checks and their reason codes.

Measured on the frame geometry (box, landmarks) and on the *aligned* crops, so values are
comparable across cameras and resolutions. A failed check adds a :class:`Reason`; the
service answers such a face ``uncertain`` instead of guessing. Every measured value is
returned as a float in ``FaceCandidate.quality``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from models.crop import face_features_box
from models.preprocess import FaceCrops
from service.face.config import FaceStageConfig
from service.face.types import Detection, Reason

#: The face region of an aligned crop (fractions of the side: x0, y0, x1, y1): the crop
#: convention's brows-to-chin box (:func:`models.crop.face_features_box`).
FACE_REGION = face_features_box()
#: Sharpness is measured at this side so the threshold does not depend on the model size.
SHARPNESS_SIDE = 112


def _region(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    x0, y0, x1, y1 = FACE_REGION
    return img[int(y0 * h) : int(y1 * h), int(x0 * w) : int(x1 * w)]


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _to_u8(ir: np.ndarray) -> np.ndarray:
    if ir.dtype == np.uint8:
        return ir
    return (ir.astype(np.float32) * np.float32(255.0 / 65535.0)).astype(np.uint8)


def sharpness(gray: np.ndarray) -> float:
    """Variance of the Laplacian of the face region at :data:`SHARPNESS_SIDE` pixels."""
    if gray.shape[0] != SHARPNESS_SIDE or gray.shape[1] != SHARPNESS_SIDE:
        gray = cv2.resize(gray, (SHARPNESS_SIDE, SHARPNESS_SIDE), interpolation=cv2.INTER_AREA)
    lap = cv2.Laplacian(_region(gray), cv2.CV_32F)
    return float(lap.var())


def outside_fraction(crop_matrix: np.ndarray, size: int, frame_shape: tuple[int, int]) -> float:
    """Fraction of the aligned crop's face region whose source lies outside the frame.

    A detector keeps boxes inside the image, so the box alone misses a face cut by the
    edge; the landmarks (through the crop matrix) still say where the whole face is.
    """
    H, W = frame_shape
    x0, y0, x1, y1 = FACE_REGION
    g = (np.arange(12) + 0.5) / 12
    gx, gy = np.meshgrid(x0 + (x1 - x0) * g, y0 + (y1 - y0) * g)
    pts = np.stack([gx.ravel(), gy.ravel()], axis=1) * size
    A = np.vstack([crop_matrix, [0.0, 0.0, 1.0]])
    src = (np.hstack([pts, np.ones((len(pts), 1))]) @ np.linalg.inv(A).T)[:, :2]
    out = (src[:, 0] < 0) | (src[:, 0] > W) | (src[:, 1] < 0) | (src[:, 1] > H)
    return float(out.mean())


def pose(landmarks: np.ndarray) -> dict[str, float]:
    """Head pose proxies from 5 landmarks (no 3D model needed).

    - ``roll_deg``: tilt of the eye line.
    - ``yaw``: signed distance of the nose from the eye-mid → mouth-mid line, in units of
      half the eye distance (0 frontal; ≈0.65 at 26° yaw on the synthetic heads).
    - ``pitch``: (eyes → nose) / (eyes → mouth) along the face's vertical axis (≈0.5
      frontal; smaller looking up, larger looking down).
    """
    lm = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    le, re, nose, ml, mr = lm
    eye_vec = re - le
    eye_dist = float(np.hypot(*eye_vec))
    roll = math.degrees(math.atan2(eye_vec[1], eye_vec[0]))
    eye_mid = (le + re) / 2.0
    mouth_mid = (ml + mr) / 2.0
    axis = mouth_mid - eye_mid
    axis_len = float(np.hypot(*axis))
    if eye_dist < 1e-6 or axis_len < 1e-6:
        return {"roll_deg": roll, "yaw": float("inf"), "pitch": float("nan")}
    down = axis / axis_len
    rel = nose - eye_mid
    # Positive yaw: nose towards the image-right eye.
    lateral = float(rel[0] * down[1] - rel[1] * down[0])
    yaw = lateral / (eye_dist / 2.0)
    pitch = float(rel @ down) / axis_len
    return {"roll_deg": roll, "yaw": yaw, "pitch": pitch}


def assess_face(
    detection: Detection,
    crops: FaceCrops,
    frame_shape: tuple[int, int] | None,
    config: FaceStageConfig,
    *,
    check_geometry: bool = True,
    crop_matrix: np.ndarray | None = None,
) -> tuple[dict[str, float], list[Reason]]:
    """Quality values and failed-check reasons of one aligned face.

    ``frame_shape`` is (height, width) of the full frame; ``check_geometry=False`` skips
    size/edge/pose checks (an already aligned crop sent by a client). ``crop_matrix`` (the
    2×3 frame → crop transform) lets the edge check see the face beyond a clipped box.
    """
    q: dict[str, float] = {"confidence": float(detection.confidence)}
    reasons: list[Reason] = []
    cfg = config

    if check_geometry and frame_shape is not None:
        H, W = frame_shape
        x1, y1, x2, y2 = (float(v) for v in detection.box)
        bw, bh = max(x2 - x1, 1e-6), max(y2 - y1, 1e-6)
        face_px = math.sqrt(bw * bh)
        q["face_px"] = face_px
        inside_w = max(0.0, min(x2, W) - max(x1, 0.0))
        inside_h = max(0.0, min(y2, H) - max(y1, 0.0))
        q["edge_cut"] = 1.0 - (inside_w * inside_h) / (bw * bh)
        present = [c for c in (crops.rgb, crops.depth, crops.ir) if c is not None]
        if crop_matrix is not None and present:
            size = present[0].shape[0]
            q["edge_cut"] = max(q["edge_cut"], outside_fraction(crop_matrix, size, (H, W)))
        if face_px < cfg.quality_min_face_px:
            reasons.append(Reason.FACE_TOO_SMALL)
        if max(bw, bh) > cfg.quality_max_face_fraction * min(H, W):
            reasons.append(Reason.FACE_TOO_CLOSE)
        lm = np.asarray(detection.landmarks, dtype=np.float64)
        lm_outside = bool(((lm < 0) | (lm >= np.array([W, H]))).any())
        if q["edge_cut"] > cfg.quality_max_edge_cut or lm_outside:
            reasons.append(Reason.FACE_CUT_BY_EDGE)
        p = pose(detection.landmarks)
        q.update(p)
        lo, hi = cfg.quality_pitch_range
        if (
            not abs(p["yaw"]) <= cfg.quality_max_yaw
            or not lo <= p["pitch"] <= hi
            or abs(p["roll_deg"]) > cfg.quality_max_roll_deg
        ):
            reasons.append(Reason.POSE_TOO_LARGE)

    gray = None
    if crops.rgb is not None:
        gray = _gray(crops.rgb)
        brightness = float(_region(gray).mean())
        q["brightness"] = brightness
        if brightness < cfg.quality_min_brightness:
            reasons.append(Reason.TOO_DARK)
        elif brightness > cfg.quality_max_brightness:
            reasons.append(Reason.TOO_BRIGHT)
    elif crops.ir is not None:
        gray = _to_u8(crops.ir)
    if gray is not None:
        q["sharpness"] = sharpness(gray)
        if q["sharpness"] < cfg.quality_min_sharpness:
            reasons.append(Reason.BLURRED)

    if crops.depth is not None:
        region = _region(crops.depth)
        valid = region > 0
        q["depth_holes"] = 1.0 - float(valid.mean()) if region.size else 1.0
        if valid.any():
            depth_m = float(np.median(region[valid])) * crops.depth_scale
            q["depth_m"] = depth_m
            if depth_m < cfg.quality_min_face_depth_m and Reason.FACE_TOO_CLOSE not in reasons:
                reasons.append(Reason.FACE_TOO_CLOSE)
        if q["depth_holes"] > cfg.quality_max_depth_holes:
            reasons.append(Reason.DEPTH_HOLES)

    if crops.ir is not None:
        region = _region(crops.ir)
        full = 65535 if crops.ir.dtype == np.uint16 else 255
        q["ir_saturated"] = float(np.mean(region >= full - full // 64)) if region.size else 0.0
        if q["ir_saturated"] > cfg.quality_max_ir_saturated:
            reasons.append(Reason.IR_SATURATED)
    return q, reasons
