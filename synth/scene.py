"""One synthetic capture: sample a scene for a species and sensor profile, render it as
registered RGB / depth / IR frames with ground truth, and render smooth sequences.

Every random draw comes from a ``numpy.random.Generator`` seeded from the caller's seed,
so the same (species, profile, seed) always gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from sensors.bundle import focal_from_fov
from synth.appearance import FaceLook, make_look
from synth.faces import identities, load_face
from synth.family import FAMILIES, alt_background, alt_capture
from synth.geometry import Camera, Pose, project
from synth.profiles import SensorProfile, get_profile
from synth.sensor import Lighting, Nuisance, background, composite, sense
from synth.species import (
    ALL_SPECIES,
    BONA_FIDE,
    PRINT_SPECIES,
    REPLAY_SPECIES,
    Layer,
    Photo,
    build_presentation,
)


@dataclass
class Scene:
    """A registered RGB-D-IR frame with ground truth for the presented face."""

    rgb: np.ndarray  # uint8 H×W×3, RGB order
    depth: np.ndarray  # uint16 H×W, units of depth_scale (mm), 0 = hole
    ir: np.ndarray  # uint8 H×W
    depth_scale: float
    box: np.ndarray  # (4,) x1, y1, x2, y2
    landmarks: np.ndarray  # (5, 2): image-left eye, image-right eye, nose, mouth l, mouth r
    label: int  # 1 bona fide, 0 attack
    species: str
    profile: str
    info: dict[str, object] = field(default_factory=dict)


@dataclass
class SceneParams:
    """Everything drawn for a scene; a sequence varies the pose and re-renders."""

    species: str
    profile: str
    frame_size: tuple[int, int]
    seed: int
    pose: Pose
    light: Lighting
    nuisance: Nuisance
    victim: str
    attacker: str
    #: Field of view override (degrees); None = the profile's. Used for portrait photos.
    hfov_deg: float | None = None
    #: Rendering family (``synth.family``): "main", or "alt" for cross-generator tests.
    family: str = "main"


#: Least distance (mm) between the farthest layer origin of a presentation and the wall.
WALL_GAP_MM = 250.0


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys]))


def _species_key(species: str) -> int:
    return ALL_SPECIES.index(species) if species in ALL_SPECIES else -1


def sample_params(
    species: str,
    profile: str,
    seed: int,
    frame_size: tuple[int, int] | None = None,
    split: str | None = None,
) -> SceneParams:
    """Draw a scene. ``split`` (train/dev/test) restricts the identities to that split's,
    so that no person appears in two splits; None draws from all of them."""
    if species not in ALL_SPECIES:
        raise ValueError(f"unknown species '{species}'; choose one of {ALL_SPECIES}")
    prof = get_profile(profile)
    size = frame_size or prof.frame_size
    rng = _rng(seed, 1 + _species_key(species), 7)
    cam = Camera.from_fov(size[0], size[1], prof.hfov_deg)
    dist = float(np.exp(rng.uniform(*np.log(prof.distance_mm))))
    # Keep the face well inside the frame: lateral offset bounded by the field of view.
    span_x = 0.16 * size[0] * dist / cam.fx
    span_y = 0.12 * size[1] * dist / cam.fy
    pose = Pose(
        yaw=float(rng.normal(0, 10)),
        pitch=float(rng.normal(0, 7)),
        roll=float(rng.normal(0, 6)),
        tx=float(rng.uniform(-span_x, span_x)),
        ty=float(rng.uniform(-span_y, span_y) - 0.05 * size[1] * dist / cam.fy),
        tz=dist,
    )
    pose = Pose(
        float(np.clip(pose.yaw, -28, 28)),
        float(np.clip(pose.pitch, -18, 18)),
        float(np.clip(pose.roll, -16, 16)),
        pose.tx,
        pose.ty,
        pose.tz,
    )
    az, el = np.radians(rng.uniform(-60, 60)), np.radians(rng.uniform(-35, 45))
    direction = np.array([np.sin(az) * np.cos(el), -np.sin(el), -np.cos(az) * np.cos(el)])
    temp = rng.uniform(-1, 1)
    light = Lighting(
        ambient=float(rng.uniform(0.2, 0.6)),
        diffuse=float(rng.uniform(0.35, 0.85)),
        direction=direction,
        color=np.array([1 + 0.12 * temp, 1.0, 1 - 0.15 * temp], np.float32)
        * rng.uniform(0.93, 1.07, 3).astype(np.float32),
        exposure=float(np.exp(rng.normal(0.0, 0.3))),
        ir_exposure=float(np.exp(rng.normal(0.0, 0.25))),
        ir_ambient=float(prof.ir_ambient * rng.uniform(0.3, 3.0)),
    )
    nuis = Nuisance(
        motion_blur_px=float(rng.uniform(1, 6)) if rng.random() < 0.25 else 0.0,
        motion_angle_deg=float(rng.uniform(0, 180)),
        depth_quality=float(np.clip(rng.beta(4.0, 1.3), 0.15, 1.0)),
        jpeg_quality=int(rng.integers(60, 96)) if rng.random() < 0.5 else 0,
        ir_dots=prof.ir_dots and rng.random() < 0.85,
    )
    pool = identities(split)
    if not pool:
        raise ValueError(f"no face identities in split '{split}'")
    victim = pool[int(rng.integers(len(pool)))]
    # The attacker (mask wearer, print holder) is drawn independently; half the time it is
    # the victim (someone replaying their own photo), so "one person's face on another's
    # head" is never a shortcut.
    attacker = victim if rng.random() < 0.5 else pool[int(rng.integers(len(pool)))]
    return SceneParams(species, profile, size, seed, pose, light, nuis, victim, attacker)


#: Portrait photographs that prints and replays show: frame (w, h) and field of view.
PHOTO_SIZE = (240, 300)
PHOTO_HFOV_DEG = (24.0, 40.0)


def victim_photo(params: SceneParams) -> Photo:
    """A bona fide capture of the victim, as an attacker would print or replay it: the same
    renderer, lighting and camera pipeline as live scenes, framed like a portrait photo."""
    rng = _rng(params.seed, 1 + _species_key(params.species), 19)
    base = sample_params(BONA_FIDE, params.profile, int(rng.integers(2**31)), PHOTO_SIZE)
    hfov = float(rng.uniform(*PHOTO_HFOV_DEG))
    f = focal_from_fov(PHOTO_SIZE[0], hfov)
    # Face about 30-45 % of the frame width, in the upper middle.
    ied_px = rng.uniform(0.16, 0.24) * PHOTO_SIZE[0]
    dist = 63.0 * f / ied_px
    pose = Pose(
        base.pose.yaw * 0.7,
        base.pose.pitch * 0.7,
        base.pose.roll * 0.7,
        float(rng.uniform(-0.05, 0.05) * PHOTO_SIZE[0] * dist / f),
        float(rng.uniform(-0.1, 0.0) * PHOTO_SIZE[1] * dist / f),
        dist,
    )
    nuis = replace(base.nuisance, motion_blur_px=0.0, jpeg_quality=int(rng.integers(70, 96)))
    shot = render_params(
        replace(
            base,
            pose=pose,
            nuisance=nuis,
            victim=params.victim,
            attacker=params.victim,
            hfov_deg=hfov,
            family=params.family,
        )
    )
    return Photo(shot.rgb.astype(np.float32) / 255.0, shot.landmarks.copy())


def _face_box(layer: Layer) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks and face-oval outline of the presented face in object coordinates."""
    assert layer.landmarks is not None
    lm = layer.landmarks
    h, w = layer.height.shape

    def pts(uv: np.ndarray) -> np.ndarray:
        ui = np.clip(np.round(uv[:, 0]).astype(int), 0, w - 1)
        vi = np.clip(np.round(uv[:, 1]).astype(int), 0, h - 1)
        hh = layer.height[vi, ui]
        return np.stack(
            [
                (uv[:, 0] - layer.origin[0]) * layer.mm_per_px,
                (uv[:, 1] - layer.origin[1]) * layer.mm_per_px,
                -hh,
            ],
            axis=1,
        )

    oval = layer.face_oval
    if oval is not None and oval.any():
        ys, xs = np.nonzero(oval > 0.5)
        sel = np.linspace(0, len(xs) - 1, min(len(xs), 4000)).astype(int)
        outline = np.stack([xs[sel], ys[sel]], axis=1).astype(np.float64)
    else:
        outline = lm
    return pts(lm), pts(outline)


def _face_visible(layer_id: np.ndarray, lm_px: np.ndarray, face_layer: int) -> float:
    """Share of the landmarks whose pixel shows the presented face's layer."""
    h, w = layer_id.shape
    xi, yi = np.round(lm_px).astype(int).T
    inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    seen = layer_id[yi[inside], xi[inside]] == face_layer
    return float(seen.sum()) / len(lm_px)


def render_params(params: SceneParams, frame_seed: int = 0, photo: Photo | None = None) -> Scene:
    """Render ``params``; prints and replays show ``photo`` when given (for example a real
    photograph, see :func:`synth.realcheck.attack_scene`), else a rendered capture of the
    victim (:func:`victim_photo`)."""
    prof: SensorProfile = get_profile(params.profile)
    W, H = params.frame_size
    cam = Camera.from_fov(W, H, params.hfov_deg or prof.hfov_deg)
    rng = _rng(params.seed, 1 + _species_key(params.species), 11)
    victim: FaceLook = make_look(load_face(params.victim), rng)
    attacker: FaceLook = make_look(load_face(params.attacker), rng)
    if photo is None and params.species in PRINT_SPECIES + REPLAY_SPECIES:
        photo = victim_photo(params)
    pres = build_presentation(
        params.species, victim, attacker, params.pose, params.pose.tz, rng, photo
    )
    # The wall stands at least WALL_GAP_MM behind every layer's origin (heads and bodies
    # extend less than that behind theirs).
    farthest = max(lay.pose.tz for lay in pres.layers)
    bg = background(cam, rng, min_z=farthest + WALL_GAP_MM)
    if params.family == "alt":
        bg["rgb"] = alt_background(W, H, _rng(params.seed, 1 + _species_key(params.species), 23))
    comp = composite(pres, cam, bg)
    layer = pres.layers[pres.face_layer]
    lm_obj, oval_obj = _face_box(layer)
    lm_px, lm_z = project(lm_obj, layer.pose, cam)
    oval_px, _ = project(oval_obj, layer.pose, cam)
    box = np.array([*oval_px.min(axis=0), *oval_px.max(axis=0)], np.float64)
    face_visible = _face_visible(np.asarray(comp["layer_id"]), lm_px, pres.face_layer)
    # Per-frame noise varies along a sequence; the scene itself does not.
    noise_rng = _rng(params.seed, 1 + _species_key(params.species), 13, frame_seed)
    frame = sense(comp, pres, cam, prof, params.light, params.nuisance, float(lm_z[2]), noise_rng)
    if params.family == "alt":
        alt_rng = _rng(params.seed, 1 + _species_key(params.species), 29, frame_seed)
        frame.rgb, frame.depth, frame.ir = alt_capture(frame.rgb, frame.depth, frame.ir, alt_rng)
    info: dict[str, object] = {
        "victim": params.victim,
        "attacker": params.attacker,
        "distance_mm": round(float(lm_z[2]), 1),
        "yaw": round(params.pose.yaw, 2),
        "pitch": round(params.pose.pitch, 2),
        "roll": round(params.pose.roll, 2),
        "materials": [lay.material.name for lay in pres.layers],
        "depth_quality": round(params.nuisance.depth_quality, 3),
        # Fraction of the 5 landmarks where the presented face is the visible surface.
        "face_visible": face_visible,
        # Pinhole intrinsics of the registered grid: fx, fy, cx, cy (pixels).
        "intrinsics": [round(v, 3) for v in (cam.fx, cam.fy, cam.cx, cam.cy)],
    }
    return Scene(
        rgb=frame.rgb,
        depth=frame.depth,
        ir=frame.ir,
        depth_scale=0.001,
        box=box,
        landmarks=lm_px.astype(np.float64),
        label=int(params.species == BONA_FIDE),
        species=params.species,
        profile=params.profile,
        info=info,
    )


def render_scene(
    species: str,
    profile: str,
    seed: int,
    frame_size: tuple[int, int] | None = None,
    split: str | None = None,
    family: str = "main",
) -> Scene:
    """Render one registered RGB/depth/IR frame of ``species`` seen by sensor ``profile``.

    ``frame_size`` is (width, height); the default is the profile's own. The field of view
    stays the profile's, so a larger frame means more pixels on the same face.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown rendering family '{family}'; choose one of {FAMILIES}")
    return render_params(
        replace(sample_params(species, profile, seed, frame_size, split), family=family)
    )


def render_sequence(
    species: str,
    profile: str,
    n_frames: int,
    seed: int,
    fps: float = 30.0,
    frame_size: tuple[int, int] | None = None,
) -> list[Scene]:
    """``n_frames`` of one presentation with smooth motion: a live head turns and nods, a
    hand-held print or screen sways and trembles; sensor noise is new every frame."""
    base = sample_params(species, profile, seed, frame_size)
    rng = _rng(seed, 1 + _species_key(species), 17)
    live = species == BONA_FIDE
    amp = {
        "yaw": rng.uniform(4, 12) if live else rng.uniform(1, 5),
        "pitch": rng.uniform(2, 7) if live else rng.uniform(1, 4),
        "roll": rng.uniform(1, 4) if live else rng.uniform(1, 3),
        "tx": rng.uniform(5, 25),
        "ty": rng.uniform(3, 12),
        "tz": rng.uniform(5, 30),
    }
    freq = {k: rng.uniform(0.15, 0.6) for k in amp}
    phase = {k: rng.uniform(0, 2 * np.pi) for k in amp}
    tremor = 0.0 if live else rng.uniform(0.2, 1.0)
    frames = []
    for i in range(n_frames):
        t = i / fps
        d = {k: amp[k] * np.sin(2 * np.pi * freq[k] * t + phase[k]) for k in amp}
        if tremor:
            d["roll"] += tremor * np.sin(2 * np.pi * 7.3 * t)
            d["tx"] += 2 * tremor * np.sin(2 * np.pi * 6.1 * t + 1.0)
        pose = base.pose.moved(**{k: float(v) for k, v in d.items()})
        frames.append(render_params(replace(base, pose=pose), frame_seed=i + 1))
    return frames
