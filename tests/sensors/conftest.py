"""Fixtures for capture tests: deterministic bundles and recordings written with the SDK."""

from __future__ import annotations

from pathlib import Path

import pytest
from sensor_bundles import random_bundles

from sensors.bundle import FrameBundle


def _sdk_problem() -> str | None:
    try:
        import pyrealsense2  # noqa: F401
    except ImportError as exc:
        return f"pyrealsense2 not usable: {exc}"
    return None


@pytest.fixture(scope="session")
def small_recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[FrameBundle]]:
    """30 frame sets of 64×48 RGB + depth (scale 0.000125) + IR, as a .db3."""
    problem = _sdk_problem()
    if problem is not None:
        pytest.skip(problem)
    from sensors.recorder import write_recording

    bundles = random_bundles(30, depth_scale=0.000125)
    path = write_recording(tmp_path_factory.mktemp("rec") / "small.db3", bundles, fps=30)
    return path, bundles
