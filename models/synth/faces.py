"""Face identities the generator builds scenes from: real public-domain portraits.

Two portraits ship inside common wheels (matplotlib's ``grace_hopper.jpg`` and
scikit-image's ``astronaut.png``, both public domain). Aligned 256×256 textures of them,
with hand-measured landmarks, are committed under ``assets/`` so the generator works from
a runtime install; :func:`build_face_assets` rebuilds those files from the source
packages. A :class:`FaceAsset` is one aligned texture plus its five landmarks.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from models.crop import similarity_transform

log = logging.getLogger(__name__)

ASSET_DIR = Path(__file__).with_name("assets")
#: Side of an aligned face texture in pixels.
TEXTURE_SIZE = 256
#: Inter-eye distance and eye midpoint of the aligned texture (pixels).
TEXTURE_IED = 64.0
TEXTURE_EYE_MID = (128.0, 104.0)
#: A mean adult inter-pupillary distance; fixes the texture's physical scale.
IED_MM = 63.0

#: Where each public-domain portrait lives and its hand-measured landmarks (source pixels:
#: image-left eye, image-right eye, nose tip, mouth left, mouth right).
SOURCES: dict[str, dict[str, object]] = {
    "grace_hopper": {
        "package": "matplotlib",
        "path": "mpl-data/sample_data/grace_hopper.jpg",
        "landmarks": [
            [222.5, 187.5],
            [303.8, 186.0],
            [268.8, 242.5],
            [231.3, 277.5],
            [306.3, 276.3],
        ],
        "credit": "Grace Hopper, US Navy official portrait (public domain), via matplotlib",
        "glasses": True,
    },
    "astronaut": {
        "package": "skimage",
        "path": "data/astronaut.png",
        "landmarks": [
            [204.2, 101.7],
            [245.8, 103.7],
            [225.0, 125.8],
            [203.3, 140.0],
            [242.5, 141.7],
        ],
        "credit": "Eileen Collins, NASA portrait (public domain), via scikit-image",
        "glasses": False,
    },
}


@dataclass(frozen=True)
class FaceAsset:
    """An aligned face texture (RGB uint8, 256×256) and its 5 landmarks (texture pixels)."""

    name: str
    rgb: np.ndarray
    landmarks: np.ndarray
    glasses: bool

    @property
    def mm_per_px(self) -> float:
        return IED_MM / float(np.linalg.norm(self.landmarks[1] - self.landmarks[0]))


def _source_path(name: str) -> Path:
    src = SOURCES[name]
    package = str(src["package"])
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise RuntimeError(
            f"the face texture '{name}' is not in {ASSET_DIR} and its source package "
            f"'{package}' is not installed; install the dev extra (pip install 'flexlive[dev]')"
        )
    path = Path(spec.origin).parent / str(src["path"])
    if not path.is_file():
        raise RuntimeError(f"{package} is installed but has no {src['path']}")
    return path


def _align_source(name: str) -> tuple[np.ndarray, np.ndarray]:
    bgr = cv2.imread(str(_source_path(name)), cv2.IMREAD_COLOR)
    if bgr is None:
        raise RuntimeError(f"could not decode the portrait for '{name}'")
    src_lm = np.asarray(SOURCES[name]["landmarks"], dtype=np.float64)
    mid = np.asarray(TEXTURE_EYE_MID)
    eyes = np.array([mid - [TEXTURE_IED / 2, 0], mid + [TEXTURE_IED / 2, 0]])
    # Align on the eyes only so each identity keeps its own nose/mouth geometry.
    M = similarity_transform(src_lm[:2], eyes)
    out = cv2.warpAffine(
        bgr, M, (TEXTURE_SIZE, TEXTURE_SIZE), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
    )
    lm = src_lm @ M[:, :2].T + M[:, 2]
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB), lm


def build_face_assets(out_dir: Path = ASSET_DIR) -> list[Path]:
    """Rebuild the committed textures and ``faces.json`` from the source packages."""
    out_dir.mkdir(parents=True, exist_ok=True)
    meta: dict[str, object] = {}
    written = []
    for name, src in SOURCES.items():
        rgb, lm = _align_source(name)
        path = out_dir / f"{name}.png"
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        written.append(path)
        meta[name] = {
            "file": path.name,
            "landmarks": np.round(lm, 2).tolist(),
            "credit": src["credit"],
            "glasses": src["glasses"],
        }
    meta_path = out_dir / "faces.json"
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    written.append(meta_path)
    return written


@lru_cache(maxsize=1)
def load_faces() -> tuple[FaceAsset, ...]:
    """The face identities: committed assets, or the source packages when assets are absent."""
    faces = []
    meta_path = ASSET_DIR / "faces.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    for name, src in SOURCES.items():
        entry = meta.get(name)
        path = ASSET_DIR / f"{name}.png"
        if entry is not None and path.is_file():
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise RuntimeError(f"could not decode the face asset {path}")
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            lm = np.asarray(entry["landmarks"], dtype=np.float64)
        else:
            log.info("face asset %s missing; aligning it from %s", name, src["package"])
            rgb, lm = _align_source(name)
        faces.append(FaceAsset(name, rgb, lm, bool(src["glasses"])))
    return tuple(faces)
