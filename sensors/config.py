"""Source configuration: one pydantic model per adapter, picked by its literal ``type``.

``SourceConfig`` is a discriminated union, so ``{"type": "recording", "path": ...}``
validates straight into :class:`RecordingConfig`; :func:`create_source` builds the
matching adapter. Adapters are imported lazily so that a config can be parsed (and the
CLI can start) without pyrealsense2 installed.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

if TYPE_CHECKING:
    from sensors.base import FrameSource

from sensors.bundle import MODALITIES, Modality


class _SourceConfigBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    modalities: tuple[Modality, ...] = Field(
        default=MODALITIES,
        min_length=1,
        description="Modalities to deliver (a subset of what the source has).",
    )


class RealSenseConfig(_SourceConfigBase):
    """A live Intel RealSense camera (D400 family) through pyrealsense2."""

    type: Literal["realsense"] = "realsense"
    serial: str | None = Field(default=None, description="Device serial; None = first found")
    width: int = Field(default=640, gt=0)
    height: int = Field(default=480, gt=0)
    fps: int = Field(default=30, gt=0)
    visual_preset: str | None = Field(
        default=None,
        description="rs400 visual preset name, e.g. 'high_accuracy', 'high_density', "
        "'medium_density', 'hand', 'default'.",
    )
    emitter_interleave: bool = Field(
        default=False,
        description="Alternate the IR projector on/off frame by frame (emitter_on_off) and "
        "take IR from emitter-off frames (no dot pattern) and depth from emitter-on ones.",
    )
    timeout_s: float = Field(default=2.0, gt=0, description="Wait per frame before a stall")


class RecordingConfig(_SourceConfigBase):
    """A RealSense recording (``.db3`` ROS2 from SDK ≥ 2.55, or ROS1 ``.bag``)."""

    type: Literal["recording"] = "recording"
    path: Path
    real_time: bool = Field(
        default=False,
        description="Play at the recorded pace (True) or as fast as the consumer reads (False).",
    )


class VideoConfig(_SourceConfigBase):
    """A video file read with OpenCV (RGB only)."""

    type: Literal["video"] = "video"
    path: Path
    modalities: tuple[Modality, ...] = ("rgb",)
    real_time: bool = Field(default=False, description="Pace frames at the file's fps")


class CameraConfig(_SourceConfigBase):
    """A webcam (or any V4L2 device) opened with OpenCV by index (RGB only)."""

    type: Literal["camera"] = "camera"
    index: int = Field(default=0, ge=0)
    modalities: tuple[Modality, ...] = ("rgb",)
    width: int | None = Field(default=None, gt=0)
    height: int | None = Field(default=None, gt=0)
    fps: int | None = Field(default=None, gt=0)


class FolderConfig(_SourceConfigBase):
    """A folder of images grouped into bundles by file name: ``<key>_<modality>.<ext>``."""

    type: Literal["folder"] = "folder"
    path: Path
    depth_scale: float = Field(default=0.001, gt=0, description="Metres per depth unit")
    fps: float | None = Field(default=None, gt=0, description="Pace bundles; None = no pacing")


class SyntheticConfig(_SourceConfigBase):
    """A synthetic multi-sensor camera rendering ``synth`` scenes, looping."""

    type: Literal["synthetic"] = "synthetic"
    species: str = Field(
        default="bona_fide", description="What is in front of the camera: bona_fide, print_flat…"
    )
    profile: str = Field(default="d435", description="Synthetic sensor profile (d435, sr305…)")
    n_frames: int = Field(default=30, gt=0, description="Frames rendered per loop")
    seed: int = 0
    fps: float = Field(default=30.0, gt=0)
    real_time: bool = Field(default=True, description="Pace frames at fps, like a camera")
    loop: bool = Field(default=True, description="Restart the sequence instead of ending")


SourceConfig = Annotated[
    RealSenseConfig | RecordingConfig | VideoConfig | CameraConfig | FolderConfig | SyntheticConfig,
    Field(discriminator="type"),
]
SOURCE_CONFIG_ADAPTER: TypeAdapter[SourceConfig] = TypeAdapter(SourceConfig)

#: config ``type`` → "module:Class" of its adapter
ADAPTERS: dict[str, str] = {
    "realsense": "sensors.realsense_live:RealSenseLiveSource",
    "recording": "sensors.realsense_recording:RealSenseRecordingSource",
    "video": "sensors.opencv_video:VideoFileSource",
    "camera": "sensors.opencv_camera:OpenCVCameraSource",
    "folder": "sensors.folder:ImageFolderSource",
    "synthetic": "synth.source:SyntheticSource",
}


def parse_source_config(data: object) -> SourceConfig:
    """Validate a dict (or a config object) into the matching config type."""
    return SOURCE_CONFIG_ADAPTER.validate_python(data)


def create_source(config: SourceConfig) -> FrameSource:
    """The adapter for ``config`` (not opened yet)."""
    module_name, cls_name = ADAPTERS[config.type].split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    source: FrameSource = cls(config)
    return source
