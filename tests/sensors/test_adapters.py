"""OpenCV video/camera, image folder and synthetic adapters; the common interface."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
from sensor_bundles import random_bundles

from sensors.base import FrameSource, SourceEnded, SourceError
from sensors.bundle import FrameBundle
from sensors.config import CameraConfig, FolderConfig, SyntheticConfig, VideoConfig, create_source
from sensors.uri import parse_source_uri


def write_folder(root: Path, n: int) -> list[FrameBundle]:
    out = random_bundles(n, width=32, height=24, seed=1)
    for i, b in enumerate(out):
        assert b.rgb is not None and b.depth is not None and b.ir is not None
        cv2.imwrite(str(root / f"{i:04d}_rgb.png"), cv2.cvtColor(b.rgb, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / f"{i:04d}_depth.png"), b.depth)
        np.save(root / f"{i:04d}_ir.npy", b.ir)
    return out


def test_folder_bundles_by_file_name_in_rgb_order(tmp_path: Path) -> None:
    written = write_folder(tmp_path, 3)
    (tmp_path / "notes.txt").write_text("ignored")
    cv2.imwrite(str(tmp_path / "0009_color.png"), np.zeros((24, 32, 3), np.uint8))
    with create_source(parse_source_uri(f"folder:{tmp_path}?depth_scale=0.0005")) as source:
        bundles = list(source)
    assert len(bundles) == 4
    for a, b in zip(written, bundles, strict=False):
        assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.depth, b.depth)
        assert np.array_equal(a.ir, b.ir)
        assert b.depth is not None and b.depth.dtype == np.uint16 and b.depth_scale == 0.0005
    assert bundles[3].present == ("rgb",)
    assert [b.frame_index for b in bundles] == [0, 1, 2, 3]
    assert bundles[0].source.endswith("/0000")


def test_folder_skips_a_bad_bundle_and_reports_an_empty_folder(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_folder(tmp_path, 2)
    cv2.imwrite(str(tmp_path / "0001_ir.png"), np.zeros((10, 10), np.uint8))  # wrong size
    (tmp_path / "0001_ir.npy").unlink()
    with create_source(FolderConfig(path=tmp_path)) as source:
        assert len(list(source)) == 1
    assert "skipping bundle '0001'" in caplog.text
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="no images named"):
        create_source(FolderConfig(path=empty)).open()


def test_video_file_gives_rgb_bundles_until_it_ends(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write MJPG AVI")
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, :, 2] = 200  # red in OpenCV's BGR
    for _ in range(5):
        writer.write(frame)
    writer.release()
    source = create_source(VideoConfig(path=path))
    with source:
        bundles = list(source)
    assert len(bundles) == 5
    rgb = bundles[0].rgb
    assert rgb is not None and bundles[0].present == ("rgb",)
    assert rgb[..., 0].mean() > 150 and rgb[..., 2].mean() < 50  # converted to RGB
    with source, pytest.raises(SourceEnded):
        for _ in range(10):
            source.read()
    with pytest.raises(SourceError, match="no such file"):
        create_source(VideoConfig(path=tmp_path / "absent.mp4")).open()


def test_camera_index_without_a_camera_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="no camera at index 57"):
        create_source(CameraConfig(index=57)).open()


def test_read_before_open_and_close_twice() -> None:
    source: FrameSource = create_source(FolderConfig(path=Path("/nonexistent")))
    with pytest.raises(SourceError, match="before open"):
        source.read()
    source.close()
    source.close()


def test_synthetic_camera_loops_over_rendered_scenes(caplog: pytest.LogCaptureFixture) -> None:
    config = SyntheticConfig(profile="sr305", species="print_flat", n_frames=2, real_time=False)
    caplog.set_level(logging.INFO, logger="synth.source")
    with create_source(config) as source:
        # the seconds of rendering before the first frame are announced, not silent
        said = [r.getMessage() for r in caplog.records if r.name == "synth.source"]
        assert any("rendering 2 frames" in m for m in said) and any("streaming" in m for m in said)
        bundles = [source.read() for _ in range(5)]
    assert all(b is not None for b in bundles)
    first = bundles[0]
    assert first is not None and first.present == ("rgb", "depth", "ir")
    first.validate()
    assert first.intrinsics is not None
    third = bundles[2]
    assert third is not None and np.array_equal(first.rgb, third.rgb)  # looped
    assert [b.frame_index for b in bundles if b] == list(range(5))
    with pytest.raises(SourceError, match="cannot render"):
        create_source(SyntheticConfig(species="hologram", real_time=False)).open()
