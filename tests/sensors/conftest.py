"""Fixtures for capture tests: deterministic bundles and recordings written with the SDK."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sensors.bundle import FrameBundle


def pyrealsense_available() -> str | None:
    """None when pyrealsense2 imports, else why not."""
    try:
        import pyrealsense2  # noqa: F401
    except ImportError as exc:
        return f"pyrealsense2 not usable: {exc}"
    return None


requires_sdk = pytest.mark.skipif(
    pyrealsense_available() is not None, reason=str(pyrealsense_available())
)


def make_bundles(
    n: int,
    width: int = 64,
    height: int = 48,
    *,
    depth_scale: float = 0.001,
    ir_dtype: type = np.uint8,
    modalities: tuple[str, ...] = ("rgb", "depth", "ir"),
    seed: int = 0,
) -> list[FrameBundle]:
    """Random but reproducible bundles; every frame differs from the others."""
    rng = np.random.default_rng(seed)
    ir_max = 255 if ir_dtype == np.uint8 else 65535
    out = []
    for i in range(n):
        out.append(
            FrameBundle(
                rgb=rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
                if "rgb" in modalities
                else None,
                depth=rng.integers(0, 8000, (height, width), dtype=np.uint16)
                if "depth" in modalities
                else None,
                ir=rng.integers(0, ir_max + 1, (height, width)).astype(ir_dtype)
                if "ir" in modalities
                else None,
                depth_scale=depth_scale,
                frame_index=i,
            )
        )
    return out


@pytest.fixture(scope="session")
def small_recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[FrameBundle]]:
    """30 frame sets of 64×48 RGB + depth (scale 0.000125) + IR, as a .db3."""
    if pyrealsense_available() is not None:
        pytest.skip(str(pyrealsense_available()))
    from sensors.recorder import write_recording

    bundles = make_bundles(30, depth_scale=0.000125)
    path = write_recording(tmp_path_factory.mktemp("rec") / "small.db3", bundles, fps=30)
    return path, bundles
