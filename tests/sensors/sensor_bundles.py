"""Reproducible FrameBundles for tests, demos and benchmarks of capture code."""

from __future__ import annotations

import numpy as np

from sensors.bundle import FrameBundle


def random_bundles(
    n: int,
    width: int = 64,
    height: int = 48,
    *,
    depth_scale: float = 0.001,
    ir_dtype: type = np.uint8,
    modalities: tuple[str, ...] = ("rgb", "depth", "ir"),
    seed: int = 0,
) -> list[FrameBundle]:
    """``n`` random but reproducible bundles; every frame differs from the others."""
    rng = np.random.default_rng(seed)
    ir_max = 255 if ir_dtype == np.uint8 else 65535
    out = []
    for i in range(n):
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        depth = rng.integers(0, 8000, (height, width), dtype=np.uint16)
        ir: np.ndarray = rng.integers(0, ir_max + 1, (height, width)).astype(ir_dtype)
        out.append(
            FrameBundle(
                rgb=rgb if "rgb" in modalities else None,
                depth=depth if "depth" in modalities else None,
                ir=ir if "ir" in modalities else None,
                depth_scale=depth_scale,
                frame_index=i,
            )
        )
    return out
