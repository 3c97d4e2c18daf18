"""Recordings written by the SDK's recorder replay through the SDK pipeline unchanged.

After librealsense's own tests: frames come from a ``software_device``, are written by
``rs.recorder`` and read back with ``enable_device_from_file`` + ``rs.pipeline``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from sensor_bundles import random_bundles as make_bundles

from sensors.base import SourceEnded, SourceError
from sensors.bundle import FrameBundle
from sensors.config import RecordingConfig

pytest.importorskip("pyrealsense2")


def replay(path: Path, **options: object) -> list[FrameBundle]:
    from sensors.realsense_recording import RealSenseRecordingSource

    with RealSenseRecordingSource(RecordingConfig(path=path, **options)) as source:  # type: ignore[arg-type]
        return list(source)


def assert_same_pixels(written: list[FrameBundle], replayed: list[FrameBundle]) -> None:
    assert len(replayed) == len(written)
    for i, (a, b) in enumerate(zip(written, replayed, strict=True)):
        for m in a.present:
            assert np.array_equal(getattr(a, m), getattr(b, m)), f"frame {i} {m} differs"
        assert b.present == a.present
        assert b.frame_index == i


def test_replay_returns_every_frame_with_the_same_pixels_and_depth_scale(
    small_recording: tuple[Path, list[FrameBundle]],
) -> None:
    path, written = small_recording
    replayed = replay(path)
    assert_same_pixels(written, replayed)
    assert replayed[0].depth_scale == pytest.approx(0.000125, rel=1e-6)
    assert replayed[0].intrinsics is not None and replayed[0].intrinsics.width == 64
    assert replayed[0].rgb is not None and replayed[0].rgb.dtype == np.uint8
    assert replayed[0].source == f"recording:{path}"
    stamps = [b.timestamps["rgb"] for b in replayed]
    assert stamps == sorted(stamps) and stamps[1] - stamps[0] == pytest.approx(1000 / 30, abs=0.1)


def test_replay_is_deterministic(small_recording: tuple[Path, list[FrameBundle]]) -> None:
    path, written = small_recording
    for _ in range(3):  # the first frame set is not lost to the syncer at start-up
        assert len(replay(path)) == len(written)


def test_bgr8_colour_and_y16_ir_come_back_as_rgb_and_uint16(tmp_path: Path) -> None:
    from sensors.recorder import write_recording

    written = make_bundles(5, ir_dtype=np.uint16, seed=3)
    path = write_recording(tmp_path / "bgr.db3", written, fps=15, color_format="bgr8")
    replayed = replay(path)
    assert_same_pixels(written, replayed)
    assert replayed[0].ir is not None and replayed[0].ir.dtype == np.uint16


def test_missing_stream_delivers_the_rest_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from sensors.recorder import write_recording

    written = make_bundles(4, modalities=("rgb", "depth"), seed=4)
    path = write_recording(tmp_path / "no_ir.db3", written, fps=30)
    replayed = replay(path)  # asks for rgb, depth, ir by default
    assert_same_pixels(written, replayed)
    assert all(b.ir is None for b in replayed)
    assert "ir missing from the recording" in caplog.text


def test_only_missing_streams_requested_is_a_source_error(tmp_path: Path) -> None:
    from sensors.recorder import write_recording

    path = write_recording(tmp_path / "rgb.db3", make_bundles(2, modalities=("rgb",)), fps=30)
    with pytest.raises(SourceError, match="none of the requested streams"):
        replay(path, modalities=("depth", "ir"))


def test_modality_filter(small_recording: tuple[Path, list[FrameBundle]]) -> None:
    path, _ = small_recording
    replayed = replay(path, modalities=("depth",))
    assert {b.present for b in replayed} == {("depth",)}


def test_streams_of_different_sizes_are_registered_to_colour(tmp_path: Path) -> None:
    """Depth/IR at half the colour resolution (a camera before rs.align) → colour grid."""
    from sensors.recorder import RecordingWriter, StreamSpec

    specs = [
        StreamSpec("rgb", 64, 48, "rgb8"),
        StreamSpec("depth", 32, 24, "z16"),
        StreamSpec("ir", 32, 24, "y8"),
    ]
    depth = np.full((24, 32), 800, np.uint16)
    ir = np.tile(np.arange(32, dtype=np.uint8) * 8, (24, 1))
    rgb = np.zeros((48, 64, 3), np.uint8)
    with RecordingWriter(tmp_path / "sizes.db3", specs, fps=30) as writer:
        for _ in range(3):
            writer.write(rgb=rgb, depth=depth, ir=ir)
    replayed = replay(tmp_path / "sizes.db3")
    assert len(replayed) == 3
    b = replayed[0].validate()
    assert b.shape == (48, 64)
    assert b.depth is not None and b.ir is not None
    inner = b.depth[4:-4, 4:-4]
    assert (inner == 800).mean() > 0.9  # a flat wall stays a flat wall
    # IR keeps its left-to-right ramp after registration
    row = b.ir[24, 4:-4].astype(int)
    assert np.all(np.diff(row) >= 0) and row[-1] > row[0]


def test_truncated_recording_fails_or_ends_cleanly(
    small_recording: tuple[Path, list[FrameBundle]], tmp_path: Path
) -> None:
    from sensors.realsense_recording import RealSenseRecordingSource

    path, written = small_recording
    data = path.read_bytes()
    broken = tmp_path / "truncated.db3"
    broken.write_bytes(data[: len(data) // 3])
    source = RealSenseRecordingSource(RecordingConfig(path=broken))
    got = 0
    with pytest.raises(SourceError) as info:
        source.open()
        while True:
            if source.read(timeout=1.0) is not None:
                got += 1
    source.close()
    assert got < len(written)
    assert "recording" in str(info.value)
    if isinstance(info.value, SourceEnded):
        assert got >= 0  # the readable part played, then it ended


def test_garbage_and_missing_files_are_source_errors(tmp_path: Path) -> None:
    from sensors.realsense_recording import RealSenseRecordingSource

    garbage = tmp_path / "garbage.db3"
    garbage.write_bytes(b"not a recording" * 100)
    with pytest.raises(SourceError, match="not a readable recording|cannot open"):
        RealSenseRecordingSource(RecordingConfig(path=garbage)).open()
    with pytest.raises(SourceError, match="no such file"):
        RealSenseRecordingSource(RecordingConfig(path=tmp_path / "absent.db3")).open()
    with pytest.raises(SourceError, match=r"\.db3 or \.bag"):
        (tmp_path / "x.mp4").write_bytes(b"")
        RealSenseRecordingSource(RecordingConfig(path=tmp_path / "x.mp4")).open()


def test_real_time_playback_keeps_the_recorded_pace(tmp_path: Path) -> None:
    from sensors.recorder import write_recording

    written = make_bundles(12, seed=5)
    path = write_recording(tmp_path / "paced.db3", written, fps=30, pace=True)
    t0 = time.monotonic()
    replayed = replay(path, real_time=True)
    elapsed = time.monotonic() - t0
    assert_same_pixels(written, replayed)
    assert elapsed >= 0.8 * (len(written) - 1) / 30
    t0 = time.monotonic()
    assert len(replay(path)) == len(written)  # the same file, as fast as possible
    assert time.monotonic() - t0 < elapsed


def test_recorder_rejects_bad_input(tmp_path: Path) -> None:
    from sensors.recorder import write_recording

    with pytest.raises(ValueError, match=".db3"):
        write_recording(tmp_path / "a.bag", make_bundles(1))
    with pytest.raises(ValueError, match="at least one"):
        write_recording(tmp_path / "a.db3", [])
    mixed = make_bundles(1) + make_bundles(1, modalities=("rgb",))
    with pytest.raises(ValueError, match="differ from the first"):
        write_recording(tmp_path / "b.db3", mixed)
