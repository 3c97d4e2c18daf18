"""Real photographs of people the generator never renders, as camera frames.

The held-out people of ``assets/faces.csv`` (split ``holdout``) keep their original
full-frame photograph, fitted face mesh and person mask in ``assets/holdout/``. This module
loads them and, for checks with depth and infrared, renders a registered depth map and NIR
image *on the photograph's own pixel grid* from its mesh: a live head at a chosen distance
(face relief, skull, neck and shoulders, a wall behind), and skin that is bright and smooth
in NIR under an active illuminator, with its glints on the corneas (as the generator draws
every live face, :func:`synth.materials.live_face_ir`). Nothing of it is used to train.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from synth.faces import ASSET_DIR, IED_MM, five_points, load_face, manifest, mesh_triangles
from synth.geometry import surface_normals
from synth.materials import live_face_ir, luminance
from synth.relief import NOSE_TIP_MM, head_relief
from synth.scene import Scene, render_params, sample_params
from synth.species import PRINT_SPECIES, REPLAY_SPECIES, Photo


@dataclass(frozen=True)
class RealPhoto:
    """One held-out photograph: RGB uint8 (RGB order), mesh and person mask in its pixels."""

    name: str
    rgb: np.ndarray
    mesh: np.ndarray  # 468×3
    person: np.ndarray  # H×W float32
    source: str
    licence: str

    @property
    def landmarks(self) -> np.ndarray:
        return five_points(self.mesh)


@lru_cache(maxsize=1)
def holdout_photos() -> tuple[RealPhoto, ...]:
    """Every held-out photograph, in manifest order."""
    data = np.load(ASSET_DIR / "holdout.npz")
    meshes = dict(zip((str(i) for i in data["ids"]), data["mesh"], strict=True))
    with (ASSET_DIR / "faces.csv").open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "holdout"]
    return tuple(
        _load_photo(
            ASSET_DIR / "holdout",
            r["id"],
            meshes.get(r["id"]),
            f"{r['source']}: {r['source_path']}",
            r["licence"],
        )
        for r in rows
    )


def _load_photo(
    folder: Path, name: str, mesh: np.ndarray | None, source: str, licence: str
) -> RealPhoto:
    """``folder/<name>.jpg`` with its person mask ``<name>_mask.png`` and fitted ``mesh``."""
    bgr = cv2.imread(str(folder / f"{name}.jpg"), cv2.IMREAD_COLOR)
    mask = cv2.imread(str(folder / f"{name}_mask.png"), cv2.IMREAD_GRAYSCALE)
    if bgr is None or mask is None or mesh is None:
        raise RuntimeError(f"photograph '{name}' is incomplete in {folder}")
    return RealPhoto(
        name=name,
        rgb=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
        mesh=np.asarray(mesh, np.float32),
        person=mask.astype(np.float32) / 255.0,
        source=source,
        licence=licence,
    )


@dataclass(frozen=True)
class PersonPhoto:
    """One photograph of a folder of real people (``people.csv`` beside ``photos/``, as
    ``benchmarks/real_people/`` holds): the committed file and, where a face mesh was fitted,
    the photograph as a :class:`RealPhoto` for checks with depth and infrared."""

    name: str
    path: Path
    split: str
    colour: bool
    photo: RealPhoto | None


def people_photos(root: Path) -> tuple[PersonPhoto, ...]:
    """Every photograph listed in ``root/people.csv``, in manifest order."""
    data = np.load(root / "meshes.npz")
    meshes = dict(zip((str(i) for i in data["ids"]), data["mesh"], strict=True))
    with (root / "people.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for r in rows:
        path = root / "photos" / f"{r['id']}.jpg"
        photo = None
        if r["id"] in meshes:
            source = f"{r['source']} ({r['original']})"
            photo = _load_photo(path.parent, r["id"], meshes[r["id"]], source, r["licence"])
        elif not path.is_file():
            raise RuntimeError(f"photograph '{r['id']}' is missing from {root}")
        out.append(PersonPhoto(r["id"], path, r["split"], r["colour"] == "1", photo))
    return tuple(out)


def live_depth_ir(
    photo: RealPhoto, distance_mm: float = 600.0, seed: int = 0, glints: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Registered depth (uint16 mm, 0 = hole) and NIR (uint8) of the photographed person as
    a live head whose nose tip is ``distance_mm`` from the camera; ``glints=False`` renders
    the NIR without the corneal glints (eyes closed or hidden)."""
    rng = np.random.default_rng(seed)
    h, w = photo.rgb.shape[:2]
    lm = photo.landmarks
    mm_per_px = IED_MM / float(np.linalg.norm(lm[1] - lm[0]))
    height, alpha, _ = head_relief(
        (h, w), photo.mesh, mesh_triangles(), photo.person, mm_per_px, 95.0
    )
    plane = distance_mm + NOSE_TIP_MM  # the head's rotation plane
    z = np.where(alpha > 0.5, plane - height, plane + 1200.0).astype(np.float32)
    # Stereo-like error growing with range², and holes at the silhouette (occlusion).
    z += rng.normal(0, 1.0, z.shape).astype(np.float32) * (z / 1000.0) ** 2 * 3.0
    edge = cv2.morphologyEx((alpha > 0.5).astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3)))
    depth = np.round(z).astype(np.uint16)
    depth[edge > 0] = 0
    # NIR albedo as the generator draws a live face: skin and the emitter's corneal glints.
    nir = live_face_ir(luminance(photo.rgb.astype(np.float32) / 255.0), lm[:2], rng, glints)
    # Active illuminator beside the lens: radiance falls off with range² and with the angle
    # between the surface and the line of sight (skin: a soft cosine power), so the face is
    # bright in its middle and darkens towards its edges; the wall far behind is dim.
    falloff = np.clip((distance_mm / np.maximum(z, 1.0)) ** 2, 0, 1.2)
    ndv = -surface_normals(height, mm_per_px)[..., 2]
    shade = np.where(alpha > 0.5, np.power(np.clip(ndv, 0, 1), 0.6), 0.6)
    lit = np.where(alpha > 0.5, nir, 0.5) * falloff * shade
    ir = cv2.GaussianBlur(lit.astype(np.float32), (0, 0), 0.5)
    sigma = 0.01 + 0.015 * np.sqrt(np.clip(ir, 0, 1))
    noisy = np.clip((ir + rng.standard_normal(ir.shape) * sigma) * 255, 0, 255)
    return depth, noisy.astype(np.uint8)


#: Least drawn distance (mm; the instrument's pose, its face may sit a little nearer) an
#: attacker asked to come closer brings it to.
NEAREST_MM = 250.0


def attack_scene(
    photo: RealPhoto, species: str, profile: str = "d435", seed: int = 0, distance: float = 1.0
) -> Scene:
    """A print or replay of the real photograph ``photo``, rendered by the generator (same
    sheet, screen and camera models as the benchmark; held-out test identities for any
    holder in the scene). The photograph is shown as it is: no rendering of the person.
    ``distance`` scales the drawn camera distance (and the lateral offset with it, so the
    face stays where it was in the frame): an attacker moving the instrument closer (< 1,
    the drawn distance never below :data:`NEAREST_MM`) or farther (> 1)."""
    if species not in PRINT_SPECIES + REPLAY_SPECIES:
        raise ValueError(
            f"'{species}' does not show a photograph; choose one of "
            f"{PRINT_SPECIES + REPLAY_SPECIES}"
        )
    params = sample_params(species, profile, seed, split="test")
    if distance != 1.0:
        pose = params.pose
        k = max(distance, NEAREST_MM / pose.tz)
        params = replace(params, pose=replace(pose, tx=pose.tx * k, ty=pose.ty * k, tz=pose.tz * k))
    shown = Photo(photo.rgb.astype(np.float32) / 255.0, photo.landmarks.astype(np.float64))
    return render_params(params, photo=shown)


def library_photo(name: str) -> RealPhoto:
    """A face-library photograph (``assets/faces/<name>.jpg``: a real portrait, cropped and
    scaled so the eyes sit at fixed points, never warped) as a camera frame. Use the
    identities of one split only (:func:`synth.faces.identities`)."""
    face = load_face(name)
    row = next((r for r in manifest() if r["id"] == name), {})
    return RealPhoto(
        name=name,
        rgb=face.rgb,
        mesh=np.asarray(face.mesh, np.float32),
        person=face.person,
        source=f"{row.get('source', '?')}: {row.get('source_path', '?')}",
        licence=row.get("licence", "?"),
    )
