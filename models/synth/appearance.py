"""Per-sample appearance of a face identity: mirroring, skin tone, expression, glasses.

These act on the aligned face texture and move its landmarks with it, so every later
stage (relief, rendering, crops) stays consistent with the changed face.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from models.synth.faces import FaceAsset
from models.synth.materials import luminance


@dataclass
class FaceLook:
    """A face texture ready to render: RGB float [0,1], landmarks, and what covers it."""

    rgb: np.ndarray  # H×W×3 float32
    landmarks: np.ndarray  # 5×2
    mm_per_px: float
    nir: np.ndarray  # H×W float32 luminance before skin-tone change (NIR barely sees melanin)
    glasses: np.ndarray  # H×W float32 1 on glasses frames (dark, in front of the face)
    lenses: np.ndarray  # H×W float32 1 on lenses (glare in RGB and NIR)
    name: str


def _mirror(rgb: np.ndarray, lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = rgb.shape[1]
    out = rgb[:, ::-1].copy()
    m = lm.copy()
    m[:, 0] = (w - 1) - m[:, 0]
    # Image-left/right swap under a mirror.
    return out, m[[1, 0, 2, 4, 3]]


def _face_mask(shape: tuple[int, int], lm: np.ndarray) -> np.ndarray:
    """Soft mask of the face and neck skin (the oval below the hairline)."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    ied = float(np.linalg.norm(lm[1] - lm[0]))
    cx = float(lm[:, 0].mean())
    cy = float(lm[:2, 1].mean()) + 0.55 * ied
    oval = ((x - cx) / (1.0 * ied)) ** 2 + ((y - cy) / (1.25 * ied)) ** 2 < 1
    neck = (np.abs(x - cx) < 0.55 * ied) & (y > cy)
    return cv2.GaussianBlur((oval | neck).astype(np.float32), (0, 0), 0.12 * ied)


def _expression(
    rgb: np.ndarray, lm: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth warps around the mouth and brows: smile/open mouth, raised brows, face width."""
    h, w = rgb.shape[:2]
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    ied = float(np.linalg.norm(lm[1] - lm[0]))
    dx = np.zeros((h, w), np.float32)
    dy = np.zeros((h, w), np.float32)
    moves = np.zeros_like(lm)
    smile = rng.uniform(-0.06, 0.1) * ied
    lift = rng.uniform(-0.05, 0.07) * ied
    for i, side in ((3, -1.0), (4, 1.0)):
        g = np.exp(
            -0.5 * (((x - lm[i, 0]) / (0.25 * ied)) ** 2 + ((y - lm[i, 1]) / (0.2 * ied)) ** 2)
        )
        dx += side * smile * g
        dy -= lift * g
        moves[i] = [side * smile, -lift]
    brow = rng.uniform(-0.04, 0.06) * ied
    for i in (0, 1):
        g = np.exp(
            -0.5
            * (
                ((x - lm[i, 0]) / (0.3 * ied)) ** 2
                + ((y - lm[i, 1] + 0.35 * ied) / (0.12 * ied)) ** 2
            )
        )
        dy -= brow * g
    # Face width (chubbier/thinner) as a horizontal scale about the nose, stronger low down.
    wscale = rng.uniform(-0.06, 0.06)
    low = np.clip((y - lm[0, 1]) / (1.5 * ied), 0, 1)
    dx += wscale * (x - lm[2, 0]) * low
    moves[:, 0] += (
        wscale * (lm[:, 0] - lm[2, 0]) * np.clip((lm[:, 1] - lm[0, 1]) / (1.5 * ied), 0, 1)
    )
    # Inverse map: a point p moves to about p + d(p).
    out = cv2.remap(rgb, x - dx, y - dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out, lm + moves


def _glasses(
    shape: tuple[int, int], lm: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    h, w = shape
    frame = np.zeros((h, w), np.uint8)
    lens = np.zeros((h, w), np.uint8)
    ied = float(np.linalg.norm(lm[1] - lm[0]))
    ax, ay = int(0.36 * ied * rng.uniform(0.9, 1.15)), int(0.25 * ied * rng.uniform(0.85, 1.2))
    thick = max(1, int(rng.uniform(0.03, 0.08) * ied))
    for e in lm[:2]:
        c = (int(e[0]), int(e[1] + 0.03 * ied))
        cv2.ellipse(lens, c, (ax, ay), 0, 0, 360, 1, -1)
        cv2.ellipse(frame, c, (ax, ay), 0, 0, 360, 1, thick)
    y0 = int(lm[0, 1] - 0.05 * ied)
    cv2.line(frame, (int(lm[0, 0] + ax), y0), (int(lm[1, 0] - ax), y0), 1, thick)
    for e, s in ((lm[0], -1), (lm[1], 1)):
        x0 = int(e[0] + s * ax)
        cv2.line(frame, (x0, y0), (int(x0 + s * 0.35 * ied), y0 - 2), 1, thick)
    return frame.astype(np.float32), lens.astype(np.float32)


def make_look(face: FaceAsset, rng: np.random.Generator, *, variation: bool = True) -> FaceLook:
    """Draw one appearance of an identity (deterministic in ``rng``)."""
    rgb8, lm = face.rgb, face.landmarks.astype(np.float64)
    if variation and rng.random() < 0.5:
        rgb8, lm = _mirror(rgb8, lm)
    rgb = rgb8.astype(np.float32) / 255.0
    nir = None
    if variation:
        rgb, lm = _expression(rgb, lm, rng)
        nir = luminance(rgb)
        # Skin tone: darken/lighten and shift hue over the whole face, not patchily.
        skin = _face_mask(rgb.shape[:2], lm)[..., None]
        tone = rng.choice([0.45, 0.6, 0.75, 0.9, 1.0, 1.1], p=[0.12, 0.15, 0.18, 0.2, 0.2, 0.15])
        tint = np.array([1.0, rng.uniform(0.9, 1.02), rng.uniform(0.82, 1.0)], np.float32)
        toned = rgb * np.float32(tone) * tint if tone < 1.0 else 1 - (1 - rgb) / np.float32(tone)
        rgb = rgb * (1 - skin) + np.clip(toned, 0, 1) * skin
        # Hair/clothes/background hue rotation outside the skin keeps the two identities
        # from being recognisable by their colours alone.
        hsv = cv2.cvtColor(np.clip(rgb, 0, 1).astype(np.float32), cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-40, 40) * (1 - skin[..., 0])) % 360
        rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    shape = rgb.shape[:2]
    if nir is None:
        nir = luminance(rgb)
    if variation and not face.glasses and rng.random() < 0.25:
        frame, lens = _glasses(shape, lm, rng)
        color = rng.uniform(0.0, 0.35, size=3).astype(np.float32)
        rgb = rgb * (1 - frame[..., None]) + color * frame[..., None]
        nir = nir * (1 - frame) + 0.1 * frame
    elif face.glasses:
        # Grace Hopper wears glasses in the portrait itself.
        frame, lens = _glasses(shape, lm, np.random.default_rng(7))
        frame *= 0.0
    else:
        frame = lens = np.zeros(shape, np.float32)
    return FaceLook(
        rgb.astype(np.float32), lm, face.mm_per_px, nir.astype(np.float32), frame, lens, face.name
    )
