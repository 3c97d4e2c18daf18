"""Per-sample appearance of a face identity: which way round the photograph is shown.

A real photograph is never warped: pose, expression of light and scale come from the 3D
mesh, the renderer and the camera. Mirroring moves the mesh, mask and landmarks with the
texture, so every later stage (relief, rendering, crops) stays consistent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.faces import FaceAsset
from synth.materials import luminance


@dataclass
class FaceLook:
    """A face texture ready to render: RGB float [0,1], landmarks, mesh and silhouette."""

    rgb: np.ndarray  # H×W×3 float32
    landmarks: np.ndarray  # 5×2
    mesh: np.ndarray  # 468×3: texture x, y and relative depth z (pixels, + away)
    person: np.ndarray  # H×W float32 person mask
    mm_per_px: float
    nir: np.ndarray  # H×W float32 luminance (NIR barely sees melanin; see materials.skin_ir)
    name: str


def make_look(face: FaceAsset, rng: np.random.Generator, *, variation: bool = True) -> FaceLook:
    """Draw one appearance of an identity (deterministic in ``rng``)."""
    rgb8, lm, mesh, person = face.rgb, face.landmarks.copy(), face.mesh.copy(), face.person
    if variation and rng.random() < 0.5:
        w = rgb8.shape[1]
        rgb8, person = rgb8[:, ::-1], person[:, ::-1]
        mesh[:, 0] = (w - 1) - mesh[:, 0]
        lm[:, 0] = (w - 1) - lm[:, 0]
        lm = lm[[1, 0, 2, 4, 3]]  # image-left/right swap under a mirror
    rgb = np.ascontiguousarray(rgb8, dtype=np.float32) / 255.0
    return FaceLook(
        rgb=rgb,
        landmarks=lm,
        mesh=mesh,
        person=np.ascontiguousarray(person, dtype=np.float32),
        mm_per_px=face.mm_per_px,
        nir=luminance(rgb).astype(np.float32),
        name=face.name,
    )
