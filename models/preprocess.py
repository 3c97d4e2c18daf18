"""The ONE definition of how aligned face crops become model input tensors.

Used unchanged by the training data pipeline and by the serving engine, so a crop is
normalised identically in both. numpy only (no torch, no cv2).

Conventions
-----------
- RGB crops are uint8 H×W×3 in **RGB** channel order (converted from OpenCV's BGR at
  the I/O boundary: image decoding, capture adapters, dataset readers).
- Depth crops are uint16 H×W in sensor units; ``depth_scale`` is metres per unit
  (RealSense z16 default 0.001). 0 is a hole.
- IR crops are uint8 or uint16 H×W.
- A missing modality is fed as an all-zero tensor **after** normalisation and flagged 0
  in ``present`` — in training (modality dropout) exactly as in serving.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from models.crop import face_depth_square
from models.spec import CHANNELS, INPUT_PRESENT, MODALITIES, ModelSpec, PreprocessSpec

#: Central square (fraction of the side) whose valid depth pixels define the face depth
#: (the crop convention's :func:`models.crop.face_depth_square`).
FACE_CENTER_FRACTION = face_depth_square()
#: IR gain is stretched so the 99th percentile reaches 1, but never by more than this
#: (a dark LCD in NIR must stay dark) and never darkened.
IR_MAX_GAIN = 4.0


@dataclass(frozen=True)
class FaceCrops:
    """Aligned, registered crops of one face; any non-empty subset of modalities."""

    rgb: np.ndarray | None = None
    depth: np.ndarray | None = None
    ir: np.ndarray | None = None
    depth_scale: float = 0.001

    @property
    def present(self) -> tuple[str, ...]:
        return tuple(m for m in MODALITIES if getattr(self, m) is not None)

    def without(self, *modalities: str) -> FaceCrops:
        """A copy with the given modalities removed (modality dropout, health checks)."""
        unknown = set(modalities) - set(MODALITIES)
        if unknown:
            raise ValueError(f"unknown modality {sorted(unknown)}")
        return replace(
            self,
            rgb=None if "rgb" in modalities else self.rgb,
            depth=None if "depth" in modalities else self.depth,
            ir=None if "ir" in modalities else self.ir,
        )


def rgb_to_unit(rgb: np.ndarray) -> np.ndarray:
    """uint8 H×W×3 RGB → float32 3×H×W in [0, 1]."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb crop must be H×W×3, got shape {rgb.shape}")
    return np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)


def face_depth_mm(depth_mm: np.ndarray) -> float | None:
    """Median depth (mm) of valid pixels in the crop centre; None if it is all holes."""
    h, w = depth_mm.shape
    fh, fw = max(1, int(h * FACE_CENTER_FRACTION)), max(1, int(w * FACE_CENTER_FRACTION))
    y0, x0 = (h - fh) // 2, (w - fw) // 2
    center = depth_mm[y0 : y0 + fh, x0 : x0 + fw]
    valid = center[center > 0]
    if valid.size == 0:
        valid = depth_mm[depth_mm > 0]
    if valid.size == 0:
        return None
    return float(np.median(valid))


def depth_to_unit(depth: np.ndarray, depth_scale: float, range_mm: float) -> np.ndarray:
    """Depth relative to the face, nearer = brighter, in [0, 1]; holes stay exactly 0.

    ``0.5`` is the median face depth; ``±range_mm`` maps to 1 (nearer) / 0 (farther).
    """
    if depth.ndim != 2:
        raise ValueError(f"depth crop must be H×W, got shape {depth.shape}")
    if depth_scale <= 0:
        raise ValueError(f"depth_scale must be positive, got {depth_scale}")
    mm = depth.astype(np.float32) * np.float32(depth_scale * 1000.0)
    hole = depth == 0
    out = np.zeros(depth.shape, dtype=np.float32)
    ref = face_depth_mm(np.where(hole, 0, mm))
    if ref is None:
        return out[None]
    rel = (ref - mm) / np.float32(2.0 * range_mm) + np.float32(0.5)
    # Valid pixels never collapse onto the hole value.
    out[:] = np.clip(rel, 1.0 / 255.0, 1.0)
    out[hole] = 0.0
    return out[None]


def ir_to_unit(ir: np.ndarray) -> np.ndarray:
    """IR (uint8 full-scale 255, uint16 full-scale 65535) → float32 1×H×W in [0, 1].

    Per-crop gain: the 99th percentile is lifted towards 1 (at most ×``IR_MAX_GAIN``)
    so exposure differences shrink while absolute NIR darkness (screens) survives.
    """
    if ir.ndim != 2:
        raise ValueError(f"ir crop must be H×W, got shape {ir.shape}")
    if ir.dtype == np.uint8:
        x = ir.astype(np.float32) / np.float32(255.0)
    elif ir.dtype == np.uint16:
        x = ir.astype(np.float32) / np.float32(65535.0)
    else:
        x = np.clip(ir.astype(np.float32), 0.0, 1.0)
    p99 = float(np.percentile(x, 99)) if x.size else 0.0
    gain = 1.0 if p99 <= 0 else min(IR_MAX_GAIN, max(1.0, 1.0 / p99))
    return np.clip(x * np.float32(gain), 0.0, 1.0)[None]


def preprocess(crops: FaceCrops, spec: PreprocessSpec | ModelSpec) -> dict[str, np.ndarray]:
    """One face → {'rgb': 3×S×S, 'depth': 1×S×S, 'ir': 1×S×S, 'present': (3,)} float32."""
    S = spec.input_size
    out: dict[str, np.ndarray] = {}
    present = np.zeros(len(MODALITIES), dtype=np.float32)
    for i, m in enumerate(MODALITIES):
        arr = getattr(crops, m)
        if arr is None:
            out[m] = np.zeros((CHANNELS[m], S, S), dtype=np.float32)
            continue
        if arr.shape[:2] != (S, S):
            raise ValueError(f"{m} crop is {arr.shape[1]}×{arr.shape[0]}, model expects {S}×{S}")
        if m == "rgb":
            x = rgb_to_unit(arr)
        elif m == "depth":
            x = depth_to_unit(arr, crops.depth_scale, spec.depth_range_mm)
        else:
            x = ir_to_unit(arr)
        norm = spec.normalisation[m]
        mean = np.asarray(norm.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(norm.std, dtype=np.float32)[:, None, None]
        out[m] = ((x - mean) / std).astype(np.float32)
        present[i] = 1.0
    if not present.any():
        raise ValueError("a face needs at least one modality")
    out[INPUT_PRESENT] = present
    return out


def preprocess_batch(
    batch: Sequence[FaceCrops], spec: PreprocessSpec | ModelSpec
) -> dict[str, np.ndarray]:
    """Stack :func:`preprocess` over faces into N-first arrays (the ONNX feed)."""
    if not batch:
        raise ValueError("empty batch")
    items = [preprocess(c, spec) for c in batch]
    return {k: np.stack([it[k] for it in items]) for k in items[0]}
