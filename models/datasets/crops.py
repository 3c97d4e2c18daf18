"""Crop-folder datasets: protocol list → :class:`~models.preprocess.FaceCrops`, augmentation
and modality dropout. numpy + OpenCV only; the torch ``Dataset`` lives in
:mod:`models.datasets.torch_dataset`.

On disk (the synthetic benchmark and the Flex-Modal public lists alike): paths in the
protocol list are relative to a data root; RGB is an 8-bit colour image (OpenCV reads BGR;
it is converted to RGB *here*, the dataset boundary), depth a 16-bit PNG in millimetres
(``depth_scale`` 0.001), IR an 8- or 16-bit single-channel image. A path of ``-`` means
the modality was not captured for that sample.

Real datasets whose depth is an **8-bit pre-normalised image** (CASIA-SURF, CeFA: the face
is scaled to 0–255 with nearer = brighter and background 0) use
``depth_encoding="normalised8"``: a value ``v > 0`` becomes a synthetic depth of
``BASE_MM - v * (2 * depth_range_mm / 255)`` millimetres stored in 0.1 mm units
(``depth_scale`` 1e-4) and ``v = 0`` stays a hole. Through :func:`models.preprocess.
depth_to_unit` the full 0–255 range then spans the full [0, 1] input range, centred on the
face median, nearer still brighter — the same convention as metric depth.
``depth_encoding="normalised8_far"`` is the same for images where farther = brighter.

Training-time transforms operate on the *raw crops* and modality dropout *removes*
modalities from the FaceCrops before :func:`models.preprocess.preprocess`, so an absent
modality becomes zeros after normalisation with ``present = 0`` — exactly what serving does.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from models.crop import FACE_SCALE, template
from models.datasets.protocol import ProtocolEntry, read_protocol
from models.preprocess import FaceCrops
from models.spec import MODALITIES

log = logging.getLogger(__name__)

DEPTH_ENCODINGS = ("mm16", "normalised8", "normalised8_far")
#: Synthetic face distance used to turn 8-bit pre-normalised depth into millimetres.
BASE_MM = 1000.0
MISSING = {"-", "none", "None"}


def protocol_path(data_root: str | Path, protocol: str, split: str) -> Path:
    """``DIR/protocols/<protocol>/<split>.txt``, or ``protocol`` itself if it is a file."""
    p = Path(protocol)
    if p.suffix == ".txt" and p.is_file():
        return p
    return Path(data_root) / "protocols" / protocol / f"{split}.txt"


def _read(path: Path, flags: int) -> np.ndarray:
    img = cv2.imread(str(path), flags)
    if img is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return img


def normalised8_to_depth(
    v: np.ndarray, depth_range_mm: float, far_is_bright: bool = False
) -> np.ndarray:
    """8-bit pre-normalised depth → uint16 depth in 0.1 mm units (use depth_scale 1e-4)."""
    if v.ndim == 3:
        v = v[..., 0]
    x = v.astype(np.float64)
    if far_is_bright:
        x = np.where(v > 0, 256.0 - x, 0.0)
    mm = BASE_MM - x * (2.0 * depth_range_mm / 255.0)
    out = np.round(mm * 10.0).astype(np.uint16)
    out[v == 0] = 0
    return out


def load_crops(
    root: str | Path,
    entry: ProtocolEntry,
    depth_encoding: str = "mm16",
    depth_range_mm: float = 120.0,
) -> FaceCrops:
    """Read one sample's crops (RGB converted from OpenCV's BGR to RGB here)."""
    if depth_encoding not in DEPTH_ENCODINGS:
        raise ValueError(f"depth_encoding must be one of {DEPTH_ENCODINGS}, got {depth_encoding!r}")
    root = Path(root)
    rgb = depth = ir = None
    depth_scale = 0.001
    if entry.rgb not in MISSING:
        bgr = _read(root / entry.rgb, cv2.IMREAD_COLOR)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if entry.depth not in MISSING:
        d = _read(root / entry.depth, cv2.IMREAD_UNCHANGED)
        if depth_encoding == "mm16":
            if d.dtype != np.uint16:
                raise ValueError(
                    f"{entry.depth}: depth is {d.dtype}, expected a 16-bit PNG in mm; "
                    "for 8-bit pre-normalised depth use depth_encoding='normalised8'"
                )
            depth = d
        else:
            depth = normalised8_to_depth(
                d, depth_range_mm, far_is_bright=depth_encoding == "normalised8_far"
            )
            depth_scale = 1e-4
    if entry.ir not in MISSING:
        x = _read(root / entry.ir, cv2.IMREAD_UNCHANGED)
        ir = x[..., 0] if x.ndim == 3 else x
    return FaceCrops(rgb=rgb, depth=depth, ir=ir, depth_scale=depth_scale)


# -- augmentation on raw crops ----------------------------------------------------------------
def _jitter_u8(x: np.ndarray, gain: float | np.ndarray, gamma: float) -> np.ndarray:
    full = 255.0 if x.dtype == np.uint8 else 65535.0
    y = np.clip(x.astype(np.float32) / full, 0.0, 1.0) ** gamma * gain
    return np.clip(y * full + 0.5, 0, full).astype(x.dtype)


def hide_eye_glints(ir: np.ndarray, face_scale: float = FACE_SCALE) -> np.ndarray:
    """An aligned NIR crop with both eyes' small bright spots removed: the emitter's
    corneal glints, as with closed eyes, a blink or glasses' glare. A 5×5 median over a
    disc round each template eye keeps the eye's shading and drops anything smaller."""
    size = ir.shape[0]
    eyes = template(size, face_scale)[:2]
    yy, xx = np.mgrid[0 : ir.shape[0], 0 : ir.shape[1]]
    disc = np.zeros(ir.shape[:2], bool)
    for ex, ey in eyes:
        disc |= (xx - ex) ** 2 + (yy - ey) ** 2 <= (0.06 * size) ** 2
    return np.where(disc, cv2.medianBlur(np.ascontiguousarray(ir), 5), ir).astype(ir.dtype)


@dataclass
class Augment:
    """Per-modality photometric jitter, joint geometric jitter + flip, joint cutout; with
    ``hide_glints`` > 0, NIR eyes without glints at that rate (every species alike: a live
    person blinks, and glints prove an open eye, not their absence an attack)."""

    flip: float = 0.5
    max_shift: float = 4.0  # pixels
    max_rotate: float = 6.0  # degrees
    max_scale: float = 0.06
    brightness: float = 0.3
    gamma: float = 0.35
    depth_noise_mm: float = 3.0
    cutout: float = 0.4
    cutout_size: tuple[int, int] = (14, 40)
    hide_glints: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.hide_glints <= 1.0:
            raise ValueError(f"hide_glints must be a rate in [0, 1], got {self.hide_glints}")

    def __call__(self, c: FaceCrops, rng: np.random.Generator) -> FaceCrops:
        rgb, depth, ir = c.rgb, c.depth, c.ir
        # before the geometric jitter: the crop is still aligned to the template's eyes
        if ir is not None and self.hide_glints > 0 and rng.random() < self.hide_glints:
            ir = hide_eye_glints(ir)
        size = next(x for x in (rgb, depth, ir) if x is not None).shape[0]
        # joint geometry: one similarity for every modality (nearest for depth)
        ang = math.radians(rng.uniform(-self.max_rotate, self.max_rotate))
        sc = 1.0 + rng.uniform(-self.max_scale, self.max_scale)
        M = cv2.getRotationMatrix2D((size / 2, size / 2), math.degrees(ang), sc)
        M[:, 2] += rng.uniform(-self.max_shift, self.max_shift, size=2)
        flip = rng.random() < self.flip

        def geo(x: np.ndarray | None, nearest: bool = False) -> np.ndarray | None:
            if x is None:
                return None
            interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
            y = cv2.warpAffine(x, M, (size, size), flags=interp, borderMode=cv2.BORDER_REFLECT)
            return np.ascontiguousarray(y[:, ::-1]) if flip else y

        rgb, depth, ir = geo(rgb), geo(depth, nearest=True), geo(ir)
        b, g = self.brightness, self.gamma
        if rgb is not None:
            gain = rng.uniform(1 - b, 1 + b) * rng.uniform(0.92, 1.08, size=3)
            rgb = _jitter_u8(rgb, gain.astype(np.float32), float(np.exp(rng.uniform(-g, g))))
        if ir is not None:
            ir = _jitter_u8(ir, float(rng.uniform(1 - b, 1 + b)), float(np.exp(rng.uniform(-g, g))))
        if depth is not None and self.depth_noise_mm > 0:
            sigma = rng.uniform(0, self.depth_noise_mm) / (c.depth_scale * 1000.0)
            noise = rng.normal(0.0, sigma, size=depth.shape)
            d = np.clip(depth.astype(np.float64) + noise, 1, 65535).astype(np.uint16)
            depth = np.where(depth == 0, 0, d).astype(np.uint16)
        if rng.random() < self.cutout:
            s = int(rng.integers(self.cutout_size[0], self.cutout_size[1] + 1))
            y0, x0 = (int(v) for v in rng.integers(0, size - s + 1, size=2))
            for x in (rgb, depth, ir):
                if x is not None:
                    x[y0 : y0 + s, x0 : x0 + s] = 0
        return FaceCrops(rgb=rgb, depth=depth, ir=ir, depth_scale=c.depth_scale)


@dataclass
class ModalityDropout:
    """Drop each modality independently, never leaving the sample empty.

    The paper drops depth and IR with p = 0.5 and never RGB; FlexLive also drops RGB
    (``p_rgb``) so depth+IR, depth-only and IR-only are trained too. When every modality
    was dropped, one of the originally present ones is kept at random.
    """

    p_rgb: float = 0.2
    p_depth: float = 0.5
    p_ir: float = 0.5

    def __call__(self, c: FaceCrops, rng: np.random.Generator) -> FaceCrops:
        present = c.present
        probs = {"rgb": self.p_rgb, "depth": self.p_depth, "ir": self.p_ir}
        drop = [m for m in present if rng.random() < probs[m]]
        if len(drop) == len(present):
            drop.remove(present[int(rng.integers(len(present)))])
        return c.without(*drop) if drop else c


def restrict(c: FaceCrops, subset: tuple[str, ...]) -> FaceCrops:
    """Keep only ``subset`` (the other modalities removed); evaluation and specialists."""
    return c.without(*[m for m in MODALITIES if m not in subset])


class CropCache:
    """Read each sample's crops once; the synthetic benchmark fits in memory."""

    def __init__(
        self,
        root: str | Path,
        entries: list[ProtocolEntry],
        depth_encoding: str = "mm16",
        depth_range_mm: float = 120.0,
        cache: bool = True,
    ) -> None:
        self.root = Path(root)
        self.entries = entries
        self.depth_encoding = depth_encoding
        self.depth_range_mm = depth_range_mm
        self._cache: dict[int, FaceCrops] | None = {} if cache else None

    @classmethod
    def from_protocol(
        cls, data_root: str | Path, protocol: str, split: str, **kw: object
    ) -> CropCache:
        return cls(data_root, read_protocol(protocol_path(data_root, protocol, split)), **kw)  # type: ignore[arg-type]

    @classmethod
    def from_protocols(
        cls, data_roots: Sequence[str | Path], protocol: str, split: str, **kw: object
    ) -> CropCache:
        """One cache over ``split`` of several data roots (e.g. two renders of the same
        training people, or a public dataset beside your own captures): each entry's paths
        are resolved against its own root."""
        if not data_roots:
            raise ValueError("at least one data root is required")
        if len(data_roots) == 1:
            return cls.from_protocol(data_roots[0], protocol, split, **kw)
        entries: list[ProtocolEntry] = []
        for root in data_roots:
            base = Path(root).resolve()

            def under(rel: str, base: Path = base) -> str:
                return rel if rel in MISSING else str(base / rel)

            for e in read_protocol(protocol_path(root, protocol, split)):
                entries.append(replace(e, rgb=under(e.rgb), depth=under(e.depth), ir=under(e.ir)))
        return cls(Path("/"), entries, **kw)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> FaceCrops:
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        c = load_crops(self.root, self.entries[i], self.depth_encoding, self.depth_range_mm)
        if self._cache is not None:
            self._cache[i] = c
        return c

    @property
    def labels(self) -> np.ndarray:
        return np.array([e.label for e in self.entries], dtype=np.int64)

    @property
    def species(self) -> list[str]:
        return [e.species for e in self.entries]
