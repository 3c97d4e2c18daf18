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

from synth.faces import backdrop_identities, load_face
from synth.geometry import Camera, render_surface, sample_texture
from synth.materials import Material
from synth.profiles import SensorProfile
from synth.species import Presentation


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


#: Wall paints: near-white, warm and cool greys, beige, muted pastels (RGB, linear 0-1).
_PAINTS = np.array(
    [
        [0.92, 0.91, 0.88],
        [0.85, 0.84, 0.80],
        [0.78, 0.76, 0.72],
        [0.80, 0.76, 0.66],
        [0.70, 0.72, 0.74],
        [0.62, 0.62, 0.60],
        [0.74, 0.78, 0.72],
        [0.80, 0.74, 0.70],
        [0.55, 0.58, 0.62],
        [0.40, 0.38, 0.36],
    ],
    np.float32,
)
#: Furniture and fittings: woods, greys, blacks, fabric tones (low saturation).
_THINGS = np.array(
    [
        [0.55, 0.40, 0.28],
        [0.42, 0.30, 0.20],
        [0.72, 0.60, 0.45],
        [0.20, 0.20, 0.21],
        [0.08, 0.08, 0.09],
        [0.50, 0.50, 0.52],
        [0.95, 0.95, 0.93],
        [0.35, 0.40, 0.48],
        [0.45, 0.38, 0.36],
    ],
    np.float32,
)


def _room(W: int, H: int, rng: np.random.Generator) -> np.ndarray:
    """An indoor wall: paint, light falling off from above, a door, frames, shelves."""
    paint = _PAINTS[rng.integers(len(_PAINTS))] * rng.uniform(0.85, 1.1, 3).astype(np.float32)
    rgb = np.empty((H, W, 3), np.float32)
    rgb[:] = np.clip(paint, 0, 1)
    for _ in range(rng.integers(0, 4)):
        col = _THINGS[rng.integers(len(_THINGS))] * rng.uniform(0.8, 1.15)
        x0, y0 = int(rng.uniform(-0.2, 1.0) * W), int(rng.uniform(-0.2, 0.8) * H)
        w_, h_ = int(rng.uniform(0.08, 0.45) * W), int(rng.uniform(0.05, 0.9) * H)
        cv2.rectangle(rgb, (x0, y0), (x0 + w_, y0 + h_), col.tolist(), -1)
        if rng.random() < 0.5:  # a frame or door casing around it
            c2 = (col * rng.uniform(0.5, 0.9)).tolist()
            cv2.rectangle(rgb, (x0, y0), (x0 + w_, y0 + h_), c2, int(rng.integers(2, 8)))
    if rng.random() < 0.4:  # skirting board or a floor line low in the frame
        y0 = int(rng.uniform(0.75, 1.0) * H)
        rgb[y0:] = _THINGS[rng.integers(len(_THINGS))]
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    # Ceiling lights: brighter high up and towards a side, with a soft pool of light.
    fall = 1.0 - rng.uniform(0.0, 0.35) * (y / H) - rng.uniform(-0.2, 0.2) * (x / W - 0.5)
    px, py = rng.uniform(0, W), rng.uniform(-0.3 * H, 0.5 * H)
    pool = rng.uniform(0, 0.25) * np.exp(-((x - px) ** 2 + (y - py) ** 2) / (0.5 * W) ** 2)
    rgb *= (fall + pool)[..., None]
    # Plaster and fabric: faint low-frequency mottling and fine grain.
    mottle = cv2.resize(rng.normal(0, 0.03, (6, 8)).astype(np.float32), (W, H))
    rgb += mottle[..., None] + rng.normal(0, 0.01, (H, W, 1)).astype(np.float32)
    return cv2.GaussianBlur(np.clip(rgb, 0, 1), (0, 0), float(rng.uniform(0.8, 3.0)))


def _backdrop(W: int, H: int, rng: np.random.Generator) -> np.ndarray:
    """A real photographed background (office, studio backdrop, flags, shelves): a portrait
    with its person inpainted away, out of focus as behind a subject."""
    pool = backdrop_identities()
    face = load_face(pool[int(rng.integers(len(pool)))])
    small = cv2.resize(face.rgb, (100, 120), interpolation=cv2.INTER_AREA)
    near = cv2.resize(face.person, (100, 120)) > 0.2
    hole = cv2.dilate(near.astype(np.uint8), np.ones((7, 7), np.uint8))
    filled = cv2.inpaint(small, hole, 9, cv2.INPAINT_TELEA)
    if rng.random() < 0.5:
        filled = filled[:, ::-1]
    # Crop to the frame's aspect ratio and enlarge.
    th = int(round(100 * H / W))
    y0 = int(rng.integers(0, max(1, 120 - th + 1)))
    crop = filled[y0 : y0 + th] if th <= 120 else filled
    out = cv2.resize(crop, (W, H), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255.0
    return cv2.GaussianBlur(out, (0, 0), float(rng.uniform(1.0, 4.0)))


def background(cam: Camera, rng: np.random.Generator, min_z: float = 0.0) -> dict[str, np.ndarray]:
    """What is behind the subject (a room's wall, or a photographed backdrop): texture, NIR
    albedo, depth plane.

    ``min_z`` is the nearest the wall may come (mm): the farthest point of the presentation
    plus a gap, so a wall never hides the subject standing in front of it.
    """
    H, W = cam.height, cam.width
    rgb = _backdrop(W, H, rng) if rng.random() < 0.5 else _room(W, H, rng)
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
