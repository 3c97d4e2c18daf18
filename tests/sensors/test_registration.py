"""Registration to the colour grid: the live path (``rs.align`` on SDK frame sets, IR through
the aligned depth) and the recording path (numpy) agree, on streams of different sizes
with a real baseline between the cameras."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sensors.bundle import Intrinsics
from sensors.recorder import RecordingWriter, StreamSpec

rs = pytest.importorskip("pyrealsense2")

COLOR = Intrinsics(96, 72, 80.0, 80.0, 48.0, 36.0)
DEPTH = Intrinsics(48, 36, 40.0, 40.0, 24.0, 18.0)


def scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    depth = np.full((36, 48), 1000, np.uint16)  # a wall at 1 m…
    depth[12:24, 16:32] = 600  # …with a box in front
    ir = np.tile((np.arange(48) * 5).astype(np.uint8), (36, 1))
    rgb = np.zeros((72, 96, 3), np.uint8)
    return rgb, depth, ir


def write(path: Path, baseline_m: float) -> Path:
    specs = [
        StreamSpec("rgb", 96, 72, "rgb8", COLOR),
        StreamSpec("depth", 48, 36, "z16", DEPTH),
        StreamSpec("ir", 48, 36, "y8", DEPTH),
    ]
    writer = RecordingWriter(path, specs, fps=30, pace=True)  # played in real time below
    if baseline_m:
        # the colour camera sits baseline_m to the right of the depth camera
        extr = rs.extrinsics()
        extr.rotation = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        extr.translation = [-baseline_m, 0.0, 0.0]
        back = rs.extrinsics()
        back.rotation = extr.rotation
        back.translation = [baseline_m, 0.0, 0.0]
        p = writer._profiles
        p["depth"].register_extrinsics_to(p["rgb"], extr)
        p["ir"].register_extrinsics_to(p["rgb"], extr)
        p["rgb"].register_extrinsics_to(p["depth"], back)
        p["rgb"].register_extrinsics_to(p["ir"], back)
    rgb, depth, ir = scene()
    with writer:
        for _ in range(12):
            writer.write(rgb=rgb, depth=depth, ir=ir)
    return path


def via_pipeline(path: Path) -> Any:
    """The live adapter's converter on frame sets from rs.pipeline (rs.align path)."""
    from sensors._realsense import FrameSetConverter

    pipeline = rs.pipeline()
    cfg = rs.config()
    cfg.enable_device_from_file(str(path), repeat_playback=False)
    profile = pipeline.start(cfg)
    try:
        # real-time playback (the default): a non-real-time one can stall on frames the
        # pipeline's syncer holds (docs/sensors.md)
        streams = {s.stream_type(): s for s in profile.get_streams()}
        converter = FrameSetConverter(
            rs,
            ("rgb", "depth", "ir"),
            0.001,
            color_profile=streams[rs.stream.color],
            depth_profile=streams[rs.stream.depth],
        )
        ok, frames = pipeline.try_wait_for_frames(5000)
        assert ok
        return converter, converter.convert(frames)
    finally:
        pipeline.stop()


def via_recording_source(path: Path) -> Any:
    from sensors.config import RecordingConfig
    from sensors.realsense_recording import RealSenseRecordingSource

    with RealSenseRecordingSource(RecordingConfig(path=path)) as source:
        return list(source)


@pytest.mark.parametrize("baseline_m", [0.0, 0.05])
def test_live_and_recording_registration_agree(tmp_path: Path, baseline_m: float) -> None:
    path = write(tmp_path / "geom.db3", baseline_m)
    converter, live = via_pipeline(path)
    assert not converter.registered
    recorded = via_recording_source(path)
    assert len(recorded) == 12
    for b in (live, recorded[0]):
        b.validate()
        assert b.shape == (72, 96)
        assert b.depth is not None and b.ir is not None
    # the box is where geometry puts it on the colour grid: shifted by f·B/Z pixels
    shift = 80.0 * baseline_m / 0.6
    box_cols = np.nonzero(recorded[0].depth[36] == 600)[0]
    expected_centre = 48 - shift
    assert abs(box_cols.mean() - expected_centre) <= 2.0
    # the SDK's rs.align and our numpy projection agree on almost every pixel
    valid = (live.depth > 0) & (recorded[0].depth > 0)
    assert valid.mean() > 0.8
    assert (live.depth[valid] == recorded[0].depth[valid]).mean() > 0.95
    # IR follows depth: the ramp survives and both paths agree
    ir_valid = (live.ir > 0) & (recorded[0].ir > 0)
    diff = np.abs(live.ir[ir_valid].astype(int) - recorded[0].ir[ir_valid])
    assert (diff <= 5).mean() > 0.95  # they may differ by a pixel at the box's edges
    row = recorded[0].ir[10, 10:-10].astype(int)  # on the wall, away from the box
    assert np.all(np.diff(row[row > 0]) >= 0)
