"""A live RealSense camera: needs hardware, skipped with the reason when none is attached."""

from __future__ import annotations

import numpy as np
import pytest

from sensors.base import SourceError
from sensors.config import RealSenseConfig, create_source
from sensors.realsense_live import attached_serials

# The SDK is optional: without it there is nothing to test (not even the missing camera).
pytest.importorskip("pyrealsense2")

SERIALS = attached_serials()
NO_CAMERA = "no RealSense camera attached (rs.context().query_devices() is empty)"


def test_without_a_camera_open_says_so() -> None:
    if SERIALS:
        pytest.skip("a camera is attached")
    with pytest.raises(SourceError, match="no RealSense camera attached"):
        create_source(RealSenseConfig()).open()


@pytest.mark.hardware
@pytest.mark.skipif(not SERIALS, reason=NO_CAMERA)
def test_live_camera_delivers_registered_bundles() -> None:
    with create_source(RealSenseConfig(serial=SERIALS[0], width=640, height=480, fps=30)) as src:
        bundles = [src.read(timeout=5.0) for _ in range(30)]
    got = [b for b in bundles if b is not None]
    assert len(got) >= 25
    b = got[-1].validate()
    assert b.present == ("rgb", "depth", "ir") and b.shape == (480, 640)
    assert 0 < b.depth_scale < 0.01
    assert b.depth is not None and np.count_nonzero(b.depth) > 0


@pytest.mark.hardware
@pytest.mark.skipif(not SERIALS, reason=NO_CAMERA)
def test_emitter_interleave_and_preset() -> None:
    config = RealSenseConfig(
        serial=SERIALS[0], emitter_interleave=True, visual_preset="high_accuracy"
    )
    with create_source(config) as src:
        got = [b for b in (src.read(timeout=5.0) for _ in range(20)) if b is not None]
    assert len(got) >= 8  # half rate: depth from emitter-on frames, IR from emitter-off
    assert got[-1].ir is not None


@pytest.mark.hardware
@pytest.mark.skipif(not SERIALS, reason=NO_CAMERA)
def test_unknown_serial_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="no RealSense camera with serial"):
        create_source(RealSenseConfig(serial="000000000000")).open()
