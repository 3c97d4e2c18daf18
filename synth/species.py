"""Presentation species: what stands in front of the sensor, as textured surface layers.

``build_presentation`` turns a species name into layers (texture, NIR albedo, relief,
coverage, material and pose) plus which layer carries the *presented* face whose
landmarks are the ground truth. Bona fide is a live head; prints and replays are sheets
and screens showing a face photo; masks are worn on a live head.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from models.crop import similarity_transform
from synth import materials as mat
from synth.appearance import FaceLook
from synth.faces import mesh_triangles
from synth.geometry import Pose
from synth.relief import (
    bend,
    eye_holes,
    face_outline,
    head_geometry,
    head_relief,
    landmark_outline,
)

BONA_FIDE = "bona_fide"
PRINT_SPECIES = ("print_flat", "print_curved", "print_cutout")
REPLAY_SPECIES = ("replay_phone", "replay_tablet", "replay_monitor")
MASK_SPECIES = ("mask_paper", "mask_rigid", "mask_silicone")
#: Attack instrument species, in a fixed order.
SPECIES: tuple[str, ...] = PRINT_SPECIES + REPLAY_SPECIES + MASK_SPECIES
ALL_SPECIES: tuple[str, ...] = (BONA_FIDE, *SPECIES)

#: Depth (mm) of a head from its face front to its rotation centre.
HEAD_DEPTH_MM = 95.0


@dataclass
class Layer:
    """One textured height-field surface of a presentation."""

    rgb: np.ndarray  # Ht×Wt×3 float32: reflectance, or emitted radiance when emissive
    ir: np.ndarray  # Ht×Wt float32 NIR albedo
    height: np.ndarray  # Ht×Wt float32 mm towards the camera
    alpha: np.ndarray  # Ht×Wt float32 coverage
    mm_per_px: float
    origin: tuple[float, float]  # texture point at the object origin
    pose: Pose
    material: mat.Material
    landmarks: np.ndarray | None = None  # presented face (texture px)
    face_oval: np.ndarray | None = None  # face region (texture) for the ground-truth box
    kind: str = ""


@dataclass
class Photo:
    """A photograph of the victim to print or replay: RGB float [0, 1] and its 5 landmarks.

    It is a bona fide capture rendered by the same scene pipeline, so an attack shows what
    a camera saw of a live person, not the raw texture."""

    rgb: np.ndarray
    landmarks: np.ndarray


@dataclass
class Presentation:
    layers: list[Layer]
    face_layer: int  # index of the layer whose landmarks are the ground truth
    info: dict[str, object] = field(default_factory=dict)


def torso(head: Layer, rng: np.random.Generator) -> Layer:
    """The chest below a head's photograph, continuing its clothes: each column keeps the
    colour of the photo's bottom rows there, widening slowly towards the frame's edge (low
    texture resolution: it only fills the frame)."""
    mmpp = 4.0
    h = int(600 / mmpp)
    rows = max(3, head.rgb.shape[0] // 30)
    band_a = head.alpha[-rows:].mean(0)
    cols = np.nonzero(band_a > 0.5)[0]
    if cols.size >= 4:
        band = head.rgb[-rows:, cols.min() : cols.max() + 1].mean(0)
        x0_mm = (cols.min() - head.origin[0]) * head.mm_per_px
        x1_mm = (cols.max() - head.origin[0]) * head.mm_per_px
    else:
        band = np.repeat(rng.uniform(0.05, 0.6, size=(1, 3)), 8, axis=0)
        x0_mm, x1_mm = -180.0, 180.0
    top_w = max(int((x1_mm - x0_mm) / mmpp), 8)
    w = top_w + 2 * int(h * 0.12) + 2
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    cx = (w - 1) / 2
    half = top_w / 2 + y * 0.12
    alpha = (np.abs(x - cx) < half).astype(np.float32)
    # Column colour: the band stretched over the current width.
    u = np.clip((x - cx) / np.maximum(half, 1) * 0.5 + 0.5, 0, 1) * (len(band) - 1)
    rgb = band.astype(np.float32)[np.round(u).astype(int)]
    shade = (1.0 - rng.uniform(0.0, 0.25) * y / h)[..., None]
    rgb = np.clip(rgb * shade + rng.normal(0, 0.01, rgb.shape), 0, 1).astype(np.float32)
    rgb = cv2.GaussianBlur(rgb, (0, 0), 1.0)
    height = (45.0 * np.sqrt(np.clip(1 - ((x - cx) / (w / 2)) ** 2, 0, 1))).astype(np.float32)
    ir = np.clip(0.25 + 0.5 * rgb.mean(-1) + rng.uniform(-0.1, 0.1), 0, 1).astype(np.float32)
    # Object origin of the torso: its top centre a little above the photo's bottom edge,
    # behind the face.
    top_mm = (head.rgb.shape[0] - 1 - head.origin[1]) * head.mm_per_px - 8.0
    p = head.pose
    R = p.rotation
    offset = R @ np.array([(x0_mm + x1_mm) / 2, top_mm, 0.0])
    pose = Pose(
        p.yaw * 0.3,
        p.pitch * 0.3,
        p.roll * 0.3,
        p.tx + offset[0],
        p.ty + offset[1],
        p.tz + offset[2] + 10.0,
    )
    return Layer(rgb, ir, height, alpha, mmpp, (cx, 0.0), pose, mat.skin(rng), None, None, "torso")


def live_head(look: FaceLook, pose: Pose, rng: np.random.Generator, kind: str = "head") -> Layer:
    shape = look.rgb.shape[:2]
    lm = look.landmarks
    height, alpha, face = head_relief(
        shape, look.mesh, mesh_triangles(), look.person, look.mm_per_px, rng.uniform(88, 102)
    )
    ir = mat.live_face_ir(look.nir, lm[:2], rng)
    origin = (float(lm[:2, 0].mean()), float(lm[:2, 1].mean()))
    return Layer(
        look.rgb, ir, height, alpha, look.mm_per_px, origin, pose, mat.skin(rng), lm, face, kind
    )


def _sheet_texture(
    content: np.ndarray,
    lm: np.ndarray,
    size_mm: tuple[float, float],
    mm_per_px: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Place a face photo on a sheet of ``size_mm`` (w, h): the photo continues by reflection
    to the sheet's edge. Returns texture, landmarks on the sheet and the eye midpoint."""
    w = max(8, int(round(size_mm[0] / mm_per_px)))
    h = max(8, int(round(size_mm[1] / mm_per_px)))
    mid = lm[:2].mean(axis=0)
    # Where the eyes sit on the sheet: near the centre, a bit above it.
    ex = w / 2 + rng.uniform(-0.08, 0.08) * w
    ey = h * rng.uniform(0.36, 0.44)
    M = np.array([[1.0, 0.0, ex - mid[0]], [0.0, 1.0, ey - mid[1]]])
    tex = cv2.warpAffine(content, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    lm2 = lm + M[:, 2]
    return tex, lm2, (float(ex), float(ey))


PAPER_SIZES_MM = ((210.0, 297.0), (216.0, 279.0), (102.0, 152.0), (127.0, 178.0), (148.0, 210.0))


def _print_layer(photo: Photo, pose: Pose, rng: np.random.Generator, species: str) -> Layer:
    size = PAPER_SIZES_MM[rng.integers(len(PAPER_SIZES_MM))]
    if rng.random() < 0.3:
        size = (size[1], size[0])
    # Printed face size relative to life size, small enough for the face to fit the sheet.
    fit = min(size[0] / (2.1 * 63.0), size[1] / (2.8 * 63.0))
    scale = min(rng.uniform(0.75, 1.15), fit)
    mmpp = 63.0 / _ied(photo.landmarks) * scale
    quality = float(rng.beta(2.0, 1.6))
    tex, lm, origin = _sheet_texture(photo.rgb, photo.landmarks, size, mmpp, rng)
    printed = mat.print_rgb(tex, rng, quality)
    h, w = printed.shape[:2]
    if rng.random() < 0.4:  # white margin of a printout
        m = int(rng.uniform(3, 15) / mmpp)
        white = np.float32(rng.uniform(0.85, 0.97))
        printed[:m], printed[-m:], printed[:, :m], printed[:, -m:] = white, white, white, white
    ir = mat.print_ir(printed, rng)
    glossy = rng.random() < 0.35
    if species == "print_curved":
        axis = "vertical" if rng.random() < 0.75 else "horizontal"
        radius = rng.uniform(75, 180) if axis == "vertical" else rng.uniform(120, 300)
        height = bend((h, w), mmpp, radius, axis, origin)
    else:
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        # A held sheet is never perfectly flat: a few mm of low-frequency waviness.
        height = (
            rng.uniform(0, 3) * np.sin(x / w * np.pi * rng.uniform(0.5, 2) + rng.uniform(0, 6))
        ).astype(np.float32)
    alpha = np.ones((h, w), np.float32)
    if species == "print_cutout":
        alpha -= eye_holes((h, w), lm, rng.uniform(0.9, 1.3))
    lay = Layer(
        printed, ir, height, alpha, mmpp, origin, pose, mat.paper(rng, glossy), lm, None, "print"
    )
    lay.face_oval = _oval_on_sheet((h, w), lm)
    return lay


def _oval_on_sheet(shape: tuple[int, int], lm: np.ndarray) -> np.ndarray:
    return landmark_outline(shape, lm)


def _ied(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(landmarks[1] - landmarks[0]))


SCREENS = {
    # display (w, h) mm, bezel mm, face IED on the display mm
    "replay_phone": ((68.0, 145.0), (2.5, 7.0), (24.0, 38.0)),
    "replay_tablet": ((150.0, 205.0), (6.0, 16.0), (40.0, 70.0)),
    "replay_monitor": ((520.0, 300.0), (8.0, 20.0), (50.0, 95.0)),
}


def _screen_layers(
    photo: Photo, pose: Pose, rng: np.random.Generator, species: str
) -> tuple[Layer, Layer]:
    (dw, dh), bezel_rng, ied_rng = SCREENS[species]
    if species != "replay_monitor" and rng.random() < 0.25:
        dw, dh = dh, dw  # landscape
    ied_mm = rng.uniform(*ied_rng)
    # Attackers hold a small display closer so the face fills a face-sized part of the frame.
    k = ied_mm / 63.0 * rng.uniform(0.85, 1.2)
    pose = Pose(pose.yaw, pose.pitch, pose.roll, pose.tx * k, pose.ty * k, max(160.0, pose.tz * k))
    mmpp = ied_mm / _ied(photo.landmarks)
    quality = float(rng.beta(2.0, 1.5))
    tex, lm, origin = _sheet_texture(photo.rgb, photo.landmarks, (dw, dh), mmpp, rng)
    shown = mat.screen_rgb(tex, rng, quality)
    washed = rng.random() < (0.35 if species == "replay_monitor" else 0.15)
    ir = mat.screen_ir(shown, rng, washed)
    h, w = shown.shape[:2]
    disp = Layer(
        shown,
        ir,
        np.zeros((h, w), np.float32),
        np.ones((h, w), np.float32),
        mmpp,
        origin,
        pose,
        mat.screen(rng),
        lm,
        None,
        "screen",
    )
    disp.face_oval = _oval_on_sheet((h, w), lm)
    b = int(np.ceil(rng.uniform(*bezel_rng) / mmpp))
    color = np.float32(rng.choice([0.03, 0.08, 0.6, 0.85]))
    brgb = np.full((h + 2 * b, w + 2 * b, 3), color, np.float32)
    brgb *= rng.uniform(0.9, 1.1, size=3).astype(np.float32)
    balpha = np.ones((h + 2 * b, w + 2 * b), np.float32)
    balpha[b:-b, b:-b] = 0.0
    bir = np.full(balpha.shape, rng.uniform(0.08, 0.6), np.float32)
    bh = np.full(balpha.shape, rng.uniform(0.5, 3.0), np.float32)
    bezel = Layer(
        brgb,
        bir,
        bh,
        balpha,
        mmpp,
        (origin[0] + b, origin[1] + b),
        pose,
        mat.plastic(rng),
        None,
        None,
        "bezel",
    )
    return disp, bezel


def _mask_layer(victim: FaceLook, wearer: Layer, rng: np.random.Generator, species: str) -> Layer:
    """A mask worn on ``wearer``: the victim's face on a shell in front of the wearer's face.

    The shell has the victim's own fitted face relief (a mask is face-shaped: nose, brows,
    lips); what separates it from live skin is its material, edges, eye holes and rigidity.
    The victim's texture, mesh and silhouette are resampled so its eyes sit on the
    wearer's eyes; the shell shares the wearer's pose and origin.
    """
    h, w = wearer.height.shape
    lm = wearer.landmarks if wearer.landmarks is not None else victim.landmarks
    M = similarity_transform(victim.landmarks[:2], lm[:2])
    scale = float(np.hypot(M[0, 0], M[1, 0]))
    rgb = cv2.warpAffine(
        victim.rgb, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    person = cv2.warpAffine(victim.person, M, (w, h), flags=cv2.INTER_LINEAR)
    mesh = victim.mesh.copy()
    mesh[:, :2] = mesh[:, :2] @ M[:, :2].T + M[:, 2]
    mesh[:, 2] *= scale
    mlm = victim.landmarks @ M[:, :2].T + M[:, 2]
    g = head_geometry(mlm)
    tri = mesh_triangles()
    mmpp = wearer.mm_per_px
    y = np.mgrid[0:h, 0:w][0].astype(np.float32)
    face = face_outline((h, w), mesh)
    nose_front = float(wearer.height[int(lm[2, 1]), int(lm[2, 0])])
    if species == "mask_silicone":
        height, head_alpha, _ = head_relief((h, w), mesh, tri, person, mmpp, rng.uniform(88, 102))
        height = np.maximum(height + rng.uniform(1.5, 4.0), wearer.height + 1.0)
        # A full-head mask: head and upper neck, ending in a seam.
        alpha = head_alpha * (y < g["chin_y"] + rng.uniform(0.2, 0.6) * g["ied"]).astype(np.float32)
        if rng.random() < 0.6:
            alpha *= 1 - eye_holes((h, w), mlm, rng.uniform(0.8, 1.0))
        rgb = mat.silicone_rgb(rgb, rng)
        ir = mat.silicone_ir(rgb, rng)
        material = mat.silicone(rng)
    else:
        alpha = face * (1 - eye_holes((h, w), mlm, rng.uniform(0.9, 1.25)))
        height, _, _ = head_relief((h, w), mesh, tri, person, mmpp, 95.0)
        if species == "mask_rigid":
            height = mat.blur(height, rng.uniform(1.0, 3.5))
            height = np.maximum(height + rng.uniform(3, 9), wearer.height + 2.0)
            rgb = mat.resin_rgb(rgb, rng)
            ir = mat.resin_ir(rgb, rng)
            material = mat.resin(rng)
        else:  # mask_paper: a printed face on card, bent round the face and touching the nose
            quality = float(rng.beta(2.0, 1.6))
            rgb = mat.print_rgb(rgb, rng, quality)
            ir = mat.print_ir(rgb, rng)
            curve = bend((h, w), mmpp, rng.uniform(70, 140), "vertical", (g["cx"], g["cy"]))
            relief = rng.uniform(0.15, 0.35) * (height - height[int(mlm[2, 1]), int(mlm[2, 0])])
            height = np.maximum(nose_front + 2.0 + curve + relief, wearer.height + 1.0)
            material = mat.paper(rng, glossy=rng.random() < 0.2)
    return Layer(
        rgb.astype(np.float32),
        ir,
        height.astype(np.float32),
        alpha.astype(np.float32),
        mmpp,
        wearer.origin,
        wearer.pose,
        material,
        mlm,
        face,
        "mask",
    )


def build_presentation(
    species: str,
    victim: FaceLook,
    attacker: FaceLook,
    pose: Pose,
    distance_mm: float,
    rng: np.random.Generator,
    photo: Photo | None = None,
) -> Presentation:
    """Layers for one presentation of ``species``; ``pose`` is the presented face's pose
    with ``tz`` = camera distance of the face front. Prints and replays show ``photo``, a
    capture of the victim (see :class:`Photo`)."""
    if species in PRINT_SPECIES + REPLAY_SPECIES and photo is None:
        raise ValueError(f"{species} needs a photograph of the victim to show")
    if species == BONA_FIDE:
        head = live_head(victim, pose.moved(tz=HEAD_DEPTH_MM), rng)
        return Presentation([head, torso(head, rng)], 0, {})
    if species in PRINT_SPECIES:
        assert photo is not None
        sheet = _print_layer(photo, pose, rng, species)
        layers = [sheet]
        behind = species == "print_cutout" or rng.random() < 0.4
        if behind:
            gap = rng.uniform(10, 45) if species == "print_cutout" else rng.uniform(60, 250)
            head = live_head(attacker, pose.moved(tz=HEAD_DEPTH_MM + gap + 25), rng, "holder")
            # The holder's eyes sit behind the sheet's eyes (cut-outs line up with them).
            layers += [head, torso(head, rng)]
        return Presentation(layers, 0, {"paper": sheet.material.name})
    if species in REPLAY_SPECIES:
        assert photo is not None
        disp, bez = _screen_layers(photo, pose, rng, species)
        layers = [disp, bez]
        if species != "replay_monitor" and rng.random() < 0.3:
            head = live_head(attacker, disp.pose.moved(tz=rng.uniform(250, 450)), rng, "holder")
            layers += [head, torso(head, rng)]
        return Presentation(layers, 0, {})
    if species in MASK_SPECIES:
        wearer = live_head(attacker, pose.moved(tz=HEAD_DEPTH_MM), rng, "wearer")
        mask = _mask_layer(victim, wearer, rng, species)
        return Presentation([mask, wearer, torso(wearer, rng)], 0, {})
    raise ValueError(f"unknown species '{species}'; choose bona_fide or one of {SPECIES}")
