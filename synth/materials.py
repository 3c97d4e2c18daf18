"""Materials: how a surface answers visible light, near-infrared and a depth sensor.

These numbers carry the physics the benchmark is about: skin is bright and soft in NIR
(subsurface scattering), printing inks other than carbon black are nearly transparent in
NIR, LCDs emit no NIR and reflect the emitter off glass, resin is uniform and specular,
silicone is close to skin but waxier. Each species draws its parameters from overlapping
ranges so no single number separates bona fide from attack.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Material:
    name: str
    specular: float = 0.05  # RGB highlight strength
    shininess: float = 15.0
    ir_exponent: float = 1.0  # NIR shading exponent: < 1 is the soft falloff of skin
    ir_specular: float = 0.0  # emitter reflection in NIR (glass, gloss, resin)
    emissive: bool = False  # RGB is emitted light (screens), not lit by the scene
    depth_dropout: float = 0.0  # extra depth hole probability (glossy or absorbing)


def luminance(rgb: np.ndarray) -> np.ndarray:
    return (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]).astype(np.float32)


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0.05:
        return img
    return cv2.GaussianBlur(img, (0, 0), sigma)


def saturate(rgb: np.ndarray, factor: float) -> np.ndarray:
    lum = luminance(rgb)[..., None]
    return np.clip(lum + (rgb - lum) * factor, 0, 1).astype(np.float32)


def interference(
    shape: tuple[int, int], period_px: float, angle_deg: float, rng: np.random.Generator
) -> np.ndarray:
    """A zero-mean aliasing pattern (moiré of halftone or LCD pixel grid vs the sensor)."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    a = np.radians(angle_deg)
    a2 = a + np.radians(rng.uniform(60, 120))
    p1 = np.cos(2 * np.pi * (x * np.cos(a) + y * np.sin(a)) / period_px + rng.uniform(0, 6.3))
    p2 = np.cos(
        2 * np.pi * (x * np.cos(a2) + y * np.sin(a2)) / (period_px * rng.uniform(0.9, 1.6))
        + rng.uniform(0, 6.3)
    )
    return (0.5 * p1 + 0.5 * p1 * p2).astype(np.float32)


def skin(rng: np.random.Generator) -> Material:
    return Material(
        "skin",
        specular=rng.uniform(0.03, 0.16),
        shininess=rng.uniform(10, 25),
        ir_exponent=rng.uniform(0.45, 0.75),
        ir_specular=rng.uniform(0.0, 0.06),
        depth_dropout=0.0,
    )


def skin_ir(nir: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """NIR albedo of a live face from its tone-independent luminance ``nir``: bright, low
    contrast, blurred by subsurface scattering."""
    lum = blur(nir, rng.uniform(1.5, 3.0))
    base = rng.uniform(0.38, 0.55)
    return np.clip(base + rng.uniform(0.3, 0.45) * np.power(lum, 0.6), 0, 1).astype(np.float32)


def corneal_glints(
    shape: tuple[int, int], eyes: np.ndarray, ied: float, rng: np.random.Generator
) -> np.ndarray:
    """Emitter reflections on live corneas: small bright spots a print cannot have."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.zeros((h, w), np.float32)
    amp = rng.uniform(0.3, 0.8)
    for e in eyes:
        ox, oy = rng.normal(0, 0.03 * ied, 2)
        out += amp * np.exp(
            -0.5 * (((x - e[0] - ox) ** 2 + (y - e[1] - oy) ** 2) / (0.035 * ied) ** 2)
        )
    return out


def live_face_ir(
    nir: np.ndarray, eyes: np.ndarray, rng: np.random.Generator, glints: bool = True
) -> np.ndarray:
    """NIR albedo of a live face with open eyes under the active illuminator: skin
    (:func:`skin_ir`) and the emitter's glints on both corneas (``eyes``: 2×2 pixel
    centres). The one definition of a live face in NIR, for the generator's heads and for
    renders of real photographs (:mod:`synth.realcheck`). ``glints=False``: eyes closed or
    hidden (a robustness check; the generator always draws them)."""
    ir = skin_ir(nir, rng)
    if not glints:
        return ir
    ied = float(np.linalg.norm(eyes[1] - eyes[0]))
    return np.clip(ir + corneal_glints(nir.shape[:2], eyes, ied, rng), 0, 1).astype(np.float32)


def paper(rng: np.random.Generator, glossy: bool) -> Material:
    return Material(
        "paper_glossy" if glossy else "paper",
        specular=rng.uniform(0.2, 0.55) if glossy else rng.uniform(0.0, 0.05),
        shininess=rng.uniform(40, 90) if glossy else 8.0,
        ir_exponent=rng.uniform(0.9, 1.15),
        ir_specular=rng.uniform(0.1, 0.35) if glossy else 0.0,
        depth_dropout=0.15 if glossy else 0.0,
    )


def print_rgb(rgb: np.ndarray, rng: np.random.Generator, quality: float) -> np.ndarray:
    """A face photo as a printer reproduces it: gamut, paper white, ink black, softness,
    banding and halftone moiré; ``quality`` in [0, 1] scales how visible all that is."""
    bad = 1.0 - quality
    out = saturate(rgb, rng.uniform(0.65, 1.0) + 0.1 * quality)
    gamma = rng.uniform(0.85, 1.25)
    black = rng.uniform(0.01, 0.05) + bad * rng.uniform(0.0, 0.1)
    white = rng.uniform(0.86, 0.98)
    cast = 1.0 + bad * rng.uniform(-0.08, 0.08, size=3).astype(np.float32)
    out = black + (white - black) * np.power(np.clip(out, 0, 1), gamma) * cast
    out = blur(out, rng.uniform(0.2, 0.6) + bad * rng.uniform(0.0, 1.3))
    h, w = out.shape[:2]
    if rng.random() < 0.35 + 0.4 * bad:
        y = np.arange(h, dtype=np.float32)[:, None, None]
        out = out * (1 + bad * rng.uniform(0.0, 0.05) * np.sin(2 * np.pi * y / rng.uniform(2.5, 7)))
    if rng.random() < 0.3 + 0.5 * bad:
        pat = interference((h, w), rng.uniform(2.2, 7.0), rng.uniform(0, 180), rng)
        out = out * (1 + rng.uniform(0.01, 0.03 + 0.06 * bad) * pat[..., None])
    return np.clip(out, 0, 1).astype(np.float32)


def print_ir(printed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """NIR albedo of a print: bright paper; only carbon-black ink absorbs NIR."""
    lum = luminance(printed)
    paper_ir = rng.uniform(0.62, 0.9)
    carbon = rng.uniform(0.15, 0.9)  # laser toner ~ high, dye inkjet ~ low
    return np.clip(paper_ir * (1 - carbon * np.power(1 - lum, 2.0)), 0, 1).astype(np.float32)


def screen(rng: np.random.Generator) -> Material:
    return Material(
        "screen",
        specular=rng.uniform(0.1, 0.6),
        shininess=rng.uniform(60, 160),
        ir_exponent=1.0,
        ir_specular=rng.uniform(0.15, 0.6),
        emissive=True,
        depth_dropout=rng.uniform(0.1, 0.45),
    )


def screen_rgb(rgb: np.ndarray, rng: np.random.Generator, quality: float) -> np.ndarray:
    """Emitted image of a face replayed on an LCD/OLED: gamut, gamma, black glow, moiré."""
    bad = 1.0 - quality
    gamma = rng.uniform(0.8, 1.25)
    tint = np.array(
        [rng.uniform(0.88, 1.04), rng.uniform(0.94, 1.04), rng.uniform(0.98, 1.18)], np.float32
    )
    black = rng.uniform(0.01, 0.06)
    out = black + (1 - black) * np.power(
        np.clip(saturate(rgb, rng.uniform(0.9, 1.35)), 0, 1), gamma
    )
    out = blur(out * tint, rng.uniform(0.3, 1.0) + bad * rng.uniform(0, 1.2))
    h, w = out.shape[:2]
    if rng.random() < 0.5 + 0.4 * bad:
        pat = interference((h, w), rng.uniform(2.1, 6.0), rng.uniform(0, 180), rng)
        sub = np.stack([pat, np.roll(pat, 1, axis=1), np.roll(pat, 2, axis=1)], axis=-1)
        out = out * (1 + rng.uniform(0.015, 0.04 + 0.1 * bad) * sub)
    if rng.random() < 0.5:
        # A room light or window mirrored in the glass: a soft bright patch over the image.
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        sx, sy = rng.uniform(0.1, 0.5) * w, rng.uniform(0.1, 0.5) * h
        patch = np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))
        out = out + rng.uniform(0.04, 0.3) * patch[..., None]
    return np.clip(out, 0, 1).astype(np.float32)


def screen_ir(rgb: np.ndarray, rng: np.random.Generator, washed_out: bool) -> np.ndarray:
    """LCDs emit no NIR: a dark panel, or a washed-out grey one (NIR-transparent polariser
    showing the backlight diffuser), with at most a faint ghost of the image."""
    lum = luminance(rgb)
    level = rng.uniform(0.25, 0.55) if washed_out else rng.uniform(0.03, 0.16)
    ghost = rng.uniform(0.0, 0.12)
    return np.clip(level + ghost * (lum - 0.5), 0, 1).astype(np.float32)


def plastic(rng: np.random.Generator) -> Material:
    return Material(
        "plastic",
        specular=rng.uniform(0.05, 0.3),
        shininess=rng.uniform(20, 60),
        ir_exponent=1.0,
        ir_specular=rng.uniform(0.0, 0.2),
        depth_dropout=0.1,
    )


def resin(rng: np.random.Generator) -> Material:
    return Material(
        "resin",
        specular=rng.uniform(0.12, 0.45),
        shininess=rng.uniform(18, 50),
        ir_exponent=rng.uniform(0.85, 1.1),
        ir_specular=rng.uniform(0.05, 0.3),
        depth_dropout=0.05,
    )


def resin_rgb(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A rigid mask's painted face: softened detail, lower saturation, a resin tint."""
    out = saturate(blur(rgb, rng.uniform(0.8, 2.5)), rng.uniform(0.5, 0.95))
    tint = np.array([1.0, rng.uniform(0.92, 1.02), rng.uniform(0.82, 0.98)], np.float32)
    return np.clip(out * tint * rng.uniform(0.9, 1.1), 0, 1).astype(np.float32)


def resin_ir(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    lum = luminance(rgb)
    return np.clip(rng.uniform(0.5, 0.88) + rng.uniform(0.0, 0.1) * (lum - 0.5), 0, 1).astype(
        np.float32
    )


def silicone(rng: np.random.Generator) -> Material:
    return Material(
        "silicone",
        specular=rng.uniform(0.08, 0.3),
        shininess=rng.uniform(15, 40),
        ir_exponent=rng.uniform(0.65, 0.95),
        ir_specular=rng.uniform(0.02, 0.12),
        depth_dropout=0.0,
    )


def silicone_rgb(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = saturate(blur(rgb, rng.uniform(0.5, 1.6)), rng.uniform(0.75, 1.0))
    tint = np.array(
        [rng.uniform(0.98, 1.06), rng.uniform(0.95, 1.02), rng.uniform(0.9, 1.02)], np.float32
    )
    return np.clip(out * tint, 0, 1).astype(np.float32)


def silicone_ir(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pigmented silicone: skin-like level, flatter (less melanin/blood structure)."""
    lum = blur(luminance(rgb), rng.uniform(1.0, 2.5))
    # Pigments are nearly transparent in NIR: painted brows and lips barely show.
    return np.clip(rng.uniform(0.45, 0.75) + rng.uniform(0.03, 0.15) * (lum - 0.4), 0, 1).astype(
        np.float32
    )
