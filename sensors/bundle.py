"""FrameBundle: one synchronised capture of any non-empty subset of RGB, depth and IR.

All present modalities are registered to one pixel grid (same H×W). RGB is uint8 H×W×3
in **RGB** order; depth is uint16 H×W in units of ``depth_scale`` metres (0 = hole); IR is
uint8 or uint16 H×W. See models/preprocess.py for the shared conventions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MODALITY_NAMES = ("rgb", "depth", "ir")


class BundleError(ValueError):
    """A bundle violates the FrameBundle contract; ``field`` names the offending modality."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


@dataclass(frozen=True)
class Intrinsics:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float


@dataclass
class FrameBundle:
    rgb: np.ndarray | None = None
    depth: np.ndarray | None = None
    ir: np.ndarray | None = None
    depth_scale: float = 0.001
    timestamps: dict[str, float] = field(default_factory=dict)
    intrinsics: Intrinsics | None = None
    frame_index: int = 0
    source: str = ""

    @property
    def present(self) -> tuple[str, ...]:
        return tuple(m for m in MODALITY_NAMES if getattr(self, m) is not None)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the shared pixel grid."""
        for m in MODALITY_NAMES:
            arr = getattr(self, m)
            if arr is not None:
                return int(arr.shape[0]), int(arr.shape[1])
        raise BundleError("bundle", "no modality present")

    def validate(self) -> FrameBundle:
        """Check dtypes, shapes and registration; raise :class:`BundleError` naming the field."""
        if not self.present:
            raise BundleError("bundle", "empty bundle: send at least one of rgb, depth, ir")
        rgb = self.rgb
        if rgb is not None and (rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3):
            raise BundleError("rgb", f"expected uint8 H×W×3, got {rgb.dtype} {rgb.shape}")
        if self.depth is not None and (self.depth.dtype != np.uint16 or self.depth.ndim != 2):
            raise BundleError(
                "depth", f"expected uint16 H×W, got {self.depth.dtype} {self.depth.shape}"
            )
        if self.ir is not None and (
            self.ir.dtype not in (np.uint8, np.uint16) or self.ir.ndim != 2
        ):
            raise BundleError(
                "ir", f"expected uint8/uint16 H×W, got {self.ir.dtype} {self.ir.shape}"
            )
        if not (self.depth_scale > 0 and np.isfinite(self.depth_scale)):
            raise BundleError("depth_scale", f"must be a positive number, got {self.depth_scale}")
        ref_name = self.present[0]
        ref = getattr(self, ref_name).shape[:2]
        for m in self.present[1:]:
            shp = getattr(self, m).shape[:2]
            if shp != ref:
                raise BundleError(
                    m,
                    f"size {shp[1]}×{shp[0]} does not match {ref_name} {ref[1]}×{ref[0]}; "
                    "modalities must be registered to one pixel grid",
                )
        return self
