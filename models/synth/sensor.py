"""From rendered surfaces to what a camera delivers: lighting, the NIR illuminator and
projector, depth sensing failures, exposure, blur and sensor noise.

Everything here acts on registered full frames, so the three modalities keep sharing one
pixel grid: RGB uint8 (RGB order), depth uint16 millimetres (0 = hole), IR uint8.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from models.synth.geometry import Camera, render_surface, sample_texture
from models.synth.materials import Material
from models.synth.profiles import SensorProfile
from models.synth.species import Presentation


@dataclass
class Lighting:
    ambient: float
    diffuse: float
    direction: np.ndarray  # unit vector from the surface towards the light (camera frame)
    color: np.ndarray  # RGB gain (white balance / colour temperature)
    exposure: float
    ir_exposure: float
    ir_ambient: float


@dataclass
class Nuisance:
    motion_blur_px: float
    motion_angle_deg: float
    depth_quality: float  # 1 = clean; lower = more holes and noise (bad surface/sunlight)
    jpeg_quality: int  # 0 = no compression
    ir_dots: bool


@dataclass
class Frame:
    rgb: np.ndarray
    depth: np.ndarray
    ir: np.ndarray
    z_true: np.ndarray  # noiseless depth (mm), inf where nothing


def background(cam: Camera, rng: np.random.Generator, min_z: float = 0.0) -> dict[str, np.ndarray]:
    """A wall (or a far room) behind the subject: texture, NIR albedo, depth plane.

    ``min_z`` is the nearest the wall may come (mm): the farthest point of the presentation
    plus a gap, so a wall never hides the subject standing in front of it.
    """
    H, W = cam.height, cam.width
    base = rng.uniform(0.15, 0.85, size=3).astype(np.float32)
    low = rng.uniform(-0.15, 0.15, size=(4, 5, 3)).astype(np.float32)
    rgb = np.clip(base + cv2.resize(low, (W, H), interpolation=cv2.INTER_CUBIC), 0, 1)
    for _ in range(rng.integers(0, 5)):  # doors, posters, shelves
        x0, y0 = int(rng.uniform(0, W)), int(rng.uniform(0, H))
        x1, y1 = int(x0 + rng.uniform(20, W / 2)), int(y0 + rng.uniform(20, H / 2))
        cv2.rectangle(rgb, (x0, y0), (x1, y1), rng.uniform(0, 1, size=3).tolist(), -1)
    rgb = cv2.GaussianBlur(rgb, (0, 0), 1.0)
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    zb = rng.uniform(1100, 4000)
    z = zb + rng.uniform(-0.6, 0.6) * (x - cam.cx) + rng.uniform(-0.3, 0.3) * (y - cam.cy)
    if float(z.min()) < min_z:  # a subject far from the camera stands near the wall
        z += min_z - float(z.min())
    ir = np.clip(0.15 + 0.8 * rgb.mean(axis=2) * rng.uniform(0.6, 1.2), 0, 1)
    return {"rgb": rgb.astype(np.float32), "ir": ir.astype(np.float32), "z": z.astype(np.float32)}


def composite(pres: Presentation, cam: Camera, bg: dict[str, np.ndarray]) -> dict[str, object]:
    """z-buffer the presentation's layers over the background; per-pixel surface attributes."""
    H, W = cam.height, cam.width
    z = bg["z"].copy()
    rgb = bg["rgb"].copy()
    ir = bg["ir"].copy()
    normal = np.zeros((H, W, 3), np.float32)
    normal[..., 2] = -1.0
    layer_id = np.full((H, W), -1, np.int16)
    for i, lay in enumerate(pres.layers):
        sp = render_surface(lay.height, lay.alpha, lay.origin, lay.mm_per_px, lay.pose, cam)
        if sp is None:
            continue
        r = sp.roi
        win = sp.mask & (sp.z < z[r])
        if not win.any():
            continue
        z[r][win] = sp.z[win]
        rgb[r][win] = sample_texture(lay.rgb, sp)[win]
        ir[r][win] = sample_texture(lay.ir, sp)[win]
        normal[r][win] = sp.normal[win]
        layer_id[r][win] = i
    return {"z": z, "rgb": rgb, "ir": ir, "normal": normal, "layer_id": layer_id}


_GAMMA_LUT = np.clip(np.power(np.arange(4096) / 4095.0, 1 / 1.1) * 255 + 0.5, 0, 255).astype(
    np.uint8
)


@lru_cache(maxsize=8)
def _view_dirs(cam: Camera) -> np.ndarray:
    """Unit vectors from each pixel's surface point towards the camera."""
    y, x = np.mgrid[0 : cam.height, 0 : cam.width].astype(np.float32)
    view = np.stack([-(x - cam.cx) / cam.fx, -(y - cam.cy) / cam.fy, -np.ones_like(x)], axis=-1)
    view /= np.sqrt((view * view).sum(-1, keepdims=True))
    view.setflags(write=False)
    return view


def _per_pixel(
    layer_id: np.ndarray, mats: list[Material], attr: str, bg_value: float
) -> np.ndarray:
    table = np.array([bg_value] + [float(getattr(m, attr)) for m in mats], np.float32)
    return table[layer_id.astype(np.int32) + 1]


def _motion_blur(img: np.ndarray, length: float, angle: float) -> np.ndarray:
    if length < 1.0:
        return img
    n = int(np.ceil(length)) | 1
    k = np.zeros((n, n), np.float32)
    c = n // 2
    dx, dy = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    for t in np.linspace(-length / 2, length / 2, 4 * n):
        k[int(round(c + t * dy)), int(round(c + t * dx))] = 1.0
    return cv2.filter2D(img, -1, k / k.sum())


def sense(
    comp: dict[str, object],
    pres: Presentation,
    cam: Camera,
    prof: SensorProfile,
    light: Lighting,
    nuis: Nuisance,
    face_z: float,
    rng: np.random.Generator,
) -> Frame:
    """Shade the composite and run it through the sensor model of ``prof``."""
    z = np.asarray(comp["z"], np.float32)
    alb = np.asarray(comp["rgb"], np.float32)
    ir_alb = np.asarray(comp["ir"], np.float32)
    n = np.asarray(comp["normal"], np.float32)
    lid = np.asarray(comp["layer_id"])
    mats = [lay.material for lay in pres.layers]
    view = _view_dirs(cam)
    ndv = np.clip((n * view).sum(-1), 0, 1)
    ndl = np.clip(n @ light.direction.astype(np.float32), 0, 1)
    half = view + light.direction.astype(np.float32)
    half /= np.sqrt((half * half).sum(-1, keepdims=True))
    ndh = np.clip((n * half).sum(-1), 0, 1)
    fg = lid >= 0

    # --- RGB ---
    spec = _per_pixel(lid, mats, "specular", 0.02)
    shin = _per_pixel(lid, mats, "shininess", 8.0)
    emissive = _per_pixel(lid, mats, "emissive", 0.0) > 0.5
    lit = alb * (light.ambient + light.diffuse * ndl)[..., None] * light.color
    # Highlights only matter near the mirror direction; skip the power elsewhere.
    hl = ndh > 0.55
    glare_s = np.zeros(z.shape, np.float32)
    glare_s[hl] = spec[hl] * np.power(ndh[hl], shin[hl])
    screen_gain = rng.uniform(0.55, 1.05)
    rgb = np.where(emissive[..., None], alb * np.float32(screen_gain), lit)
    rgb += glare_s[..., None] * light.color
    rgb *= np.float32(light.exposure)
    # --- NIR: illuminator falls off with range², skin scatters (soft falloff) ---
    zc = np.clip(z, 100, 20000)
    irexp = _per_pixel(lid, mats, "ir_exponent", 1.0)
    irspec = _per_pixel(lid, mats, "ir_specular", 0.0)
    falloff = (500.0 / zc) ** 2
    shade = ndv.copy()
    shade[fg] = np.power(ndv[fg], irexp[fg])
    ir = ir_alb * (prof.ir_power * falloff * shade + light.ir_ambient * (0.4 + 0.6 * ndl))
    mirror = (irspec > 0) & (ndv > 0.97)
    ir[mirror] += irspec[mirror] * prof.ir_power * falloff[mirror] * np.power(ndv[mirror], 400.0)
    # Auto-exposure partly compensates the subject's distance.
    ir *= np.float32(light.ir_exposure * (face_z / 500.0) ** (2 * rng.uniform(0.4, 0.9)))
    H, W = z.shape
    if nuis.ir_dots:
        dots = np.zeros((H, W), np.float32)
        k = int(H * W / rng.uniform(25, 45))
        dots[rng.integers(0, H, k), rng.integers(0, W, k)] = 1.0
        dots = cv2.GaussianBlur(dots, (0, 0), 0.6) * 2.5
        ir += dots * ir_alb * falloff * prof.ir_power * rng.uniform(0.25, 0.6) * light.ir_exposure
    # --- motion blur and optics ---
    rgb = _motion_blur(rgb.astype(np.float32), nuis.motion_blur_px, nuis.motion_angle_deg)
    ir = _motion_blur(ir.astype(np.float32), nuis.motion_blur_px, nuis.motion_angle_deg)
    rgb = cv2.GaussianBlur(rgb, (0, 0), prof.rgb_blur)
    ir = cv2.GaussianBlur(ir, (0, 0), 0.5)
    # --- noise: shot + read noise ---
    gain = np.float32(1.0 / max(light.exposure, 0.3) ** 0.5)
    rgb_sigma = (prof.rgb_noise + 0.02 * np.sqrt(np.clip(rgb, 0, 1))) * gain
    rgb = rgb + rng.standard_normal(rgb.shape, np.float32) * rgb_sigma
    ir_sigma = prof.ir_noise + 0.015 * np.sqrt(np.clip(ir, 0, 1))
    ir = ir + rng.standard_normal(ir.shape, np.float32) * ir_sigma
    # Output gamma through a lookup table on a 12-bit intermediate (cheaper than a power).
    rgb12 = np.clip(rgb * 4095 + 0.5, 0, 4095).astype(np.uint16)
    rgb8 = _GAMMA_LUT[rgb12]
    ir8 = np.clip(ir * 255 + 0.5, 0, 255).astype(np.uint8)
    if nuis.jpeg_quality:
        ok, buf = cv2.imencode(
            ".jpg", rgb8[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, nuis.jpeg_quality]
        )
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
        if decoded is not None:
            rgb8 = np.ascontiguousarray(decoded[..., ::-1])
    depth = sense_depth(z, ir_alb, ndv, lid, mats, prof, nuis, rng)
    return Frame(rgb8, depth, ir8, z)


def sense_depth(
    z: np.ndarray,
    ir_alb: np.ndarray,
    ndv: np.ndarray,
    lid: np.ndarray,
    mats: list[Material],
    prof: SensorProfile,
    nuis: Nuisance,
    rng: np.random.Generator,
) -> np.ndarray:
    """Depth as a triangulating sensor reports it: smoothed, noisy ∝ range², quantised,
    with holes at occlusion edges, on dark or glossy surfaces, at grazing angles and out of
    range."""
    H, W = z.shape
    zf = np.where(np.isfinite(z), z, 0).astype(np.float32)
    # Matching windows smear fine relief (a few pixels), never across big jumps.
    sm = cv2.bilateralFilter(zf, 5, 25.0, 2.0)
    r = sm / 1000.0
    q = 1.0 + (1.0 - nuis.depth_quality) * 2.0
    corr = cv2.GaussianBlur(rng.standard_normal((H, W), np.float32), (0, 0), 1.5) * 2.5
    white = rng.standard_normal((H, W), np.float32) * 0.5
    noisy = sm + (corr + white) * prof.noise_at_1m_mm * q * r**2
    step = np.maximum(prof.quant_at_1m_mm * r**2, 1.0)
    noisy = np.round(noisy / step) * step
    hole = (zf < prof.depth_range_mm[0]) | (zf > prof.depth_range_mm[1])
    # Occlusion shadow: the projector/second imager cannot see beside a nearer edge.
    disp = prof.baseline_mm * 385.0 / np.maximum(zf, 100.0)
    for shift in range(1, 40, 3):
        nearer = np.roll(disp, prof.shadow_side * -shift, axis=1) - disp
        hole |= nearer > shift + 1.5
    # Dark (low NIR) and glossy surfaces, grazing angles, speckle; worse when quality is low.
    drop = prof.dark_dropout * np.clip(0.3 - ir_alb, 0, 0.3) / 0.3
    drop += _per_pixel(lid, mats, "depth_dropout", 0.0) * prof.glossy_dropout * 2
    drop += np.clip(0.2 - ndv, 0, 0.2) * 3.0
    drop += (1.0 - nuis.depth_quality) ** 2 * 0.6
    # Holes come in blobs (failed matching windows), thresholded from smooth noise.
    blob = cv2.GaussianBlur(rng.random((H, W)).astype(np.float32), (0, 0), 2.0)
    blob = (blob - blob.mean()) / (blob.std() + 1e-6)
    hole |= blob < -3.0 + 4.0 * np.clip(drop, 0, 1)
    hole |= rng.random((H, W)) < 0.002 + 0.02 * (1 - nuis.depth_quality) ** 2
    out = np.where(hole | (zf <= 0), 0, np.clip(noisy, 0, 65535))
    return out.astype(np.uint16)
