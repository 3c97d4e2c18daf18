"""Face identities the generator builds scenes from: real portrait photographs of hundreds
of people, each with its fitted 3D face mesh and person mask.

The photographs are official portraits of members of the U.S. Congress (public domain,
works of the U.S. federal government) and, for training only, 25 CC0 stock portraits of
younger and more varied people (``benchmarks/real_people``'s library half), aligned to one
canonical texture frame by ``synth.build_faces`` (MediaPipe face mesh and selfie
segmentation, an offline step) and committed under ``assets/`` with a manifest
(``faces.csv``: identity, source, licence, split). Identities are split train / dev /
test; ``holdout`` identities are kept out of the generator entirely, for checks on real
photographs.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

ASSET_DIR = Path(__file__).with_name("assets")
#: A mean adult inter-pupillary distance; fixes the texture's physical scale.
IED_MM = 63.0
SPLITS = ("train", "dev", "test")
#: Mesh indices (MediaPipe topology) of the 5 landmarks: eye contours, nose tip, mouth corners.
LEFT_EYE = (33, 133, 159, 145, 160, 144, 158, 153)
RIGHT_EYE = (362, 263, 386, 374, 387, 373, 385, 380)
NOSE_TIP = 1
MOUTH = (61, 291)


def five_points(mesh: np.ndarray) -> np.ndarray:
    """The project's 5 landmarks (image-left eye, image-right eye, nose, mouth l, mouth r)
    of an unmirrored 468-point mesh."""
    return np.array(
        [
            mesh[list(LEFT_EYE), :2].mean(0),
            mesh[list(RIGHT_EYE), :2].mean(0),
            mesh[NOSE_TIP, :2],
            mesh[MOUTH[0], :2],
            mesh[MOUTH[1], :2],
        ],
        dtype=np.float64,
    )


@dataclass(frozen=True)
class FaceAsset:
    """One identity: aligned texture (RGB uint8), person mask, mesh and 5 landmarks."""

    name: str
    rgb: np.ndarray  # H×W×3 uint8, RGB order
    person: np.ndarray  # H×W float32 in [0, 1]: hair, head, neck, shoulders
    mesh: np.ndarray  # 468×3 float32: x, y texture pixels, z relative depth (pixels, +away)
    landmarks: np.ndarray  # 5×2
    split: str

    @property
    def mm_per_px(self) -> float:
        return IED_MM / float(np.linalg.norm(self.landmarks[1] - self.landmarks[0]))


@lru_cache(maxsize=1)
def _index() -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, str]]:
    data = np.load(ASSET_DIR / "faces.npz")
    with (ASSET_DIR / "faces.csv").open(newline="") as fh:
        splits = {row["id"]: row["split"] for row in csv.DictReader(fh)}
    return data["ids"], data["mesh"].astype(np.float32), data["triangles"].astype(np.int32), splits


def mesh_triangles() -> np.ndarray:
    """Triangles (T×3 mesh indices) shared by every identity's mesh."""
    return _index()[2]


@lru_cache(maxsize=1)
def identities(split: str | None = None) -> tuple[str, ...]:
    """Identity names, all or of one split, in a fixed order."""
    ids, _, _, splits = _index()
    return tuple(str(i) for i in ids if split is None or splits.get(str(i)) == split)


#: Backdrops (:func:`synth.sensor._backdrop`) come from the official portraits' office and
#: studio backgrounds only: identities added later (``build_faces --append-people``) widen
#: who is rendered without changing any dev or test scene.
BACKDROP_SOURCE = "voteview/member_photos"


@lru_cache(maxsize=1)
def backdrop_identities() -> tuple[str, ...]:
    """Identities whose photographs' backgrounds serve as backdrops, in a fixed order."""
    source = {r["id"]: r["source"] for r in manifest()}
    return tuple(i for i in identities() if source.get(i, "").startswith(BACKDROP_SOURCE))


def manifest() -> list[dict[str, str]]:
    """Every photograph's manifest row (holdout identities included)."""
    with (ASSET_DIR / "faces.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


@lru_cache(maxsize=64)
def load_face(name: str) -> FaceAsset:
    ids, meshes, _, splits = _index()
    where = np.nonzero(ids == name)[0]
    if where.size == 0:
        raise KeyError(f"no face identity '{name}' in {ASSET_DIR / 'faces.npz'}")
    bgr = cv2.imread(str(ASSET_DIR / "faces" / f"{name}.jpg"), cv2.IMREAD_COLOR)
    mask = cv2.imread(str(ASSET_DIR / "faces" / f"{name}_mask.png"), cv2.IMREAD_GRAYSCALE)
    if bgr is None or mask is None:
        raise RuntimeError(f"face asset '{name}' is missing its texture or mask")
    mesh = meshes[int(where[0])]
    return FaceAsset(
        name=name,
        rgb=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
        person=mask.astype(np.float32) / 255.0,
        mesh=mesh,
        landmarks=five_points(mesh),
        split=splits.get(name, "train"),
    )
