"""Source URIs and configs: every scheme parses, bad URIs say what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from sensors.config import (
    CameraConfig,
    FolderConfig,
    RealSenseConfig,
    RecordingConfig,
    SyntheticConfig,
    VideoConfig,
    create_source,
    parse_source_config,
)
from sensors.uri import SourceURIError, format_source_uri, parse_source_uri


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("realsense", RealSenseConfig()),
        ("realsense:f1230450", RealSenseConfig(serial="f1230450")),
        (
            "realsense:1?width=848&height=480&fps=15&emitter_interleave=true",
            RealSenseConfig(serial="1", width=848, height=480, fps=15, emitter_interleave=True),
        ),
        ("recording:/data/run.db3", RecordingConfig(path=Path("/data/run.db3"))),
        (
            "recording:old.bag?real_time=true&modalities=rgb,depth",
            RecordingConfig(path=Path("old.bag"), real_time=True, modalities=("rgb", "depth")),
        ),
        ("video:clip.mp4", VideoConfig(path=Path("clip.mp4"))),
        ("camera", CameraConfig()),
        ("camera:2", CameraConfig(index=2)),
        ("folder:./shots", FolderConfig(path=Path("./shots"))),
        ("synthetic", SyntheticConfig()),
        (
            "synthetic:sr305?species=print_flat",
            SyntheticConfig(profile="sr305", species="print_flat"),
        ),
        ("SYNTHETIC:d435", SyntheticConfig(profile="d435")),
    ],
)
def test_uris_parse(uri: str, expected: object) -> None:
    assert parse_source_uri(uri) == expected


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("", "empty"),
        ("webcam:0", "unknown source type 'webcam'"),
        ("recording:", "'recording' needs a path"),
        ("video", "'video' needs a path"),
        ("camera:front", "index"),
        ("realsense?width=-5", "width"),
        ("recording:a.db3?speed=2", "speed"),
        ("recording:a.db3?real_time=perhaps", "real_time"),
        ("recording:a.db3?modalities=rgb,thermal", "modalities"),
        ("recording:a.db3?real_time=1&real_time=0", "given twice"),
    ],
)
def test_bad_uris_are_readable(uri: str, fragment: str) -> None:
    with pytest.raises(SourceURIError) as info:
        parse_source_uri(uri)
    message = str(info.value)
    assert fragment in message
    assert "Traceback" not in message


def test_discriminated_union_picks_the_adapter(tmp_path: Path) -> None:
    config = parse_source_config({"type": "folder", "path": str(tmp_path)})
    assert isinstance(config, FolderConfig)
    source = create_source(config)
    assert type(source).__name__ == "ImageFolderSource"
    assert source.kind == "folder"
    for uri, cls_name in [
        ("recording:x.db3", "RealSenseRecordingSource"),
        ("realsense", "RealSenseLiveSource"),
        ("video:x.mp4", "VideoFileSource"),
        ("camera:0", "OpenCVCameraSource"),
        ("synthetic", "SyntheticSource"),
    ]:
        assert type(create_source(parse_source_uri(uri))).__name__ == cls_name


def test_format_source_uri_round_trips_the_value() -> None:
    for uri in ["realsense", "realsense:123", "recording:a.db3", "camera:1", "synthetic:d435"]:
        assert format_source_uri(parse_source_uri(uri)) == uri
