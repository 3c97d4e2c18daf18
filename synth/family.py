"""The second rendering family (``alt``), used only to test: a model trained on the main
family is evaluated on it, as the paper evaluates cross-dataset.

Same people (per split), species, geometry and materials; what a different camera and room
would change is chosen here independently of the main family:

- background: tiled, striped or wood-panelled walls under a coloured cast (never the main
  family's painted rooms or photographed backdrops);
- colour camera: signal-dependent (Poisson–Gaussian) noise at other levels, lens
  vignetting, an unsharp-mask sharpening stage and another tone curve;
- depth: a time-of-flight-like error model — noise proportional to range (not range²),
  "flying pixels" mixed across depth edges, and a different hole pattern;
- near infrared: a wider illuminator with vignetting, other noise and a gain offset.
"""

from __future__ import annotations

import cv2
import numpy as np

FAMILIES = ("main", "alt")


def alt_background(W: int, H: int, rng: np.random.Generator) -> np.ndarray:
    """A wall of tiles, stripes or wood panels under a coloured cast (RGB float [0, 1])."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    base = rng.uniform(0.25, 0.8, 3).astype(np.float32)
    kind = int(rng.integers(3))
    if kind == 0:  # tiles with grout lines
        s = float(rng.uniform(18, 60))
        grout = ((x % s) < 2) | ((y % s) < 2)
        pat = np.where(grout, 0.55, 1.0).astype(np.float32)
    elif kind == 1:  # vertical stripes
        s = float(rng.uniform(10, 50))
        pat = (0.85 + 0.15 * np.sign(np.sin(2 * np.pi * x / s))).astype(np.float32)
    else:  # wood panels: grain along y, seams
        s = float(rng.uniform(40, 120))
        grain = 0.9 + 0.1 * np.sin(x / rng.uniform(2, 6) + 3 * np.sin(y / 40.0))
        pat = np.where((x % s) < 2, 0.5, grain).astype(np.float32)
    cast = rng.uniform(0.8, 1.2, 3).astype(np.float32)
    rgb = pat[..., None] * base * cast
    return cv2.GaussianBlur(np.clip(rgb, 0, 1), (0, 0), float(rng.uniform(0.5, 2.0)))


def _vignette(H: int, W: int, strength: float) -> np.ndarray:
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    r2 = ((x - W / 2) / (W / 2)) ** 2 + ((y - H / 2) / (H / 2)) ** 2
    return (1.0 - strength * r2 / 2).astype(np.float32)


def alt_capture(
    rgb: np.ndarray, depth: np.ndarray, ir: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The alt family's camera on a registered frame (uint8 RGB, uint16 mm depth, uint8 IR)."""
    H, W = depth.shape
    # Colour: tone curve, vignetting, Poisson–Gaussian noise, unsharp mask.
    f = (rgb.astype(np.float32) / 255.0) ** rng.uniform(0.8, 1.2)
    f *= _vignette(H, W, rng.uniform(0.1, 0.4))[..., None]
    peak = rng.uniform(150, 800)  # photo-electrons at full scale
    f = rng.poisson(np.clip(f, 0, 1) * peak) / peak + rng.normal(
        0, rng.uniform(0.002, 0.01), f.shape
    )
    f = f.astype(np.float32)
    blur = cv2.GaussianBlur(f, (0, 0), 1.2)
    f = f + rng.uniform(0.2, 0.8) * (f - blur)
    rgb8 = np.clip(f * 255 + 0.5, 0, 255).astype(np.uint8)
    # Depth: ToF-like error ∝ range, flying pixels across edges, sparse holes.
    d = depth.astype(np.float32)
    valid = d > 0
    d = d + rng.normal(0, 1, d.shape).astype(np.float32) * d * rng.uniform(0.002, 0.006)
    # Flying pixels mix the two *surfaces* on either side of a depth edge. A hole is no
    # surface: it takes no part (mixing with 0 would put points a few mm from the lens).
    k = np.ones((3, 3), np.uint8)
    near = cv2.erode(np.where(valid, d, np.float32(np.inf)), k)
    far = cv2.dilate(np.where(valid, d, np.float32(0)), k)
    edges = valid & np.isfinite(near) & (far - near > 60)
    mix = rng.uniform(0, 1, d.shape).astype(np.float32)
    d = np.where(edges, mix * np.where(edges, near, 0) + (1 - mix) * far, d)
    holes = rng.random(d.shape) < rng.uniform(0.0, 0.03)
    depth16 = np.where(valid & ~holes, np.clip(np.round(d), 1, 65535), 0).astype(np.uint16)
    # NIR: a wider illuminator (vignetting), gain offset, other noise.
    g = ir.astype(np.float32) / 255.0 * _vignette(H, W, rng.uniform(0.2, 0.6))
    g = g * rng.uniform(0.8, 1.25) + rng.normal(0, rng.uniform(0.005, 0.02), g.shape)
    ir8 = np.clip(g * 255 + 0.5, 0, 255).astype(np.uint8)
    return rgb8, depth16, ir8
