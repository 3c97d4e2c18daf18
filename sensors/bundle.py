"""FrameBundle: one synchronised capture of any non-empty subset of RGB, depth and IR.

All present modalities are registered to one pixel grid (same H×W). RGB is uint8 H×W×3
in **RGB** order; depth is uint16 H×W in units of ``depth_scale`` metres (0 = hole); IR is
uint8 or uint16 H×W. See models/preprocess.py for the shared conventions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np

#: The modalities, in the one order every part of FlexLive uses: bundles, aligned crops,
#: the model's inputs and ``present`` flags, protocol lists, API form fields, metadata.
Modality = Literal["rgb", "depth", "ir"]
MODALITIES: tuple[Modality, ...] = get_args(Modality)
#: Horizontal field of view assumed when a source gives no intrinsics (a RealSense
#: D4xx-like imager).
DEFAULT_HFOV_DEG = 69.0


class BundleError(ValueError):
    """A bundle violates the FrameBundle contract; ``field`` names the offending modality."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


def focal_from_fov(width: int, hfov_deg: float) -> float:
    """Pinhole focal length (pixels) of an image ``width`` pixels wide seeing ``hfov_deg``."""
    return float(0.5 * width / np.tan(np.radians(hfov_deg) / 2))


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of a pixel grid (pixels; the centre of pixel (0, 0) is (0, 0))."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float = DEFAULT_HFOV_DEG) -> Intrinsics:
        """Square pixels, principal point at the image centre."""
        f = focal_from_fov(width, hfov_deg)
        return cls(width, height, f, f, (width - 1) / 2, (height - 1) / 2)


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
        return tuple(m for m in MODALITIES if getattr(self, m) is not None)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the shared pixel grid."""
        for m in MODALITIES:
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
