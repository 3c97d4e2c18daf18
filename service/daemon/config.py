"""Daemon configuration: tracking, temporal aggregation, queueing, faults, HTTP."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TrackerConfig(BaseModel):
    """Per-face tracks and how their scores become a decision over time."""

    model_config = ConfigDict(extra="forbid")

    iou_match: float = Field(
        default=0.3, gt=0, lt=1, description="Minimum box IoU to continue a track"
    )
    max_missed_frames: int = Field(
        default=15, ge=0, description="Frames a track survives without its face before it ends"
    )
    max_tracks: int = Field(default=20, ge=1, description="Tracks kept at most (bounded memory)")
    window: int = Field(default=15, ge=1, description="Scored frames combined per track")
    min_live_frames: int = Field(
        default=10,
        ge=1,
        description="Consecutive frames with the aggregated score in the live band before a "
        "track is decided live",
    )
    min_spoof_frames: int = Field(
        default=5,
        ge=1,
        description="Consecutive frames in the spoof band before a track is decided spoof "
        "(fewer than for live: an attack should be called quickly, a live person confirmed)",
    )
    hysteresis: float = Field(
        default=0.05,
        ge=0,
        lt=0.5,
        description="Extra margin a decided track's score must cross, the other way, before "
        "its decision is reconsidered",
    )


class CameraSettings(BaseModel):
    """What each camera sets for itself: tracking, queueing, faults, when to stop."""

    model_config = ConfigDict(extra="forbid")

    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    queue_size: int = Field(
        default=1,
        ge=1,
        description="Frames buffered between capture and analysis. A live source drops the "
        "oldest when full, so the default 1 means latest-frame semantics: a decision is "
        "never made on a frame older than the one being analysed (a file source waits "
        "instead, nothing is lost)",
    )
    stall_timeout_s: float = Field(
        default=2.0,
        gt=0,
        description="No frame for this long → unready; a live source is reopened, "
        "a file is waited for",
    )
    reconnect_initial_s: float = Field(default=0.5, gt=0, description="First reconnect delay")
    reconnect_max_s: float = Field(default=30.0, gt=0, description="Reconnect delay cap")
    on_end: Literal["stop", "reopen"] = Field(
        default="stop",
        description="When a finite source (recording, video, folder) ends: stop the daemon, "
        "or reopen it like a lost camera",
    )
    max_frames: int | None = Field(default=None, ge=1, description="Stop after this many frames")


class DaemonConfig(CameraSettings):
    """One camera's settings plus the process's own (HTTP, shutdown)."""

    http_host: str = Field(default="127.0.0.1", description="Interface of the daemon's HTTP server")
    http_port: int | None = Field(
        default=8081, ge=0, le=65535, description="Port (0 = any free one, None = no server)"
    )
    preview_max_width: int = Field(
        default=640,
        ge=64,
        description="Preview width cap per sensor (the preview shows each sensor side by side)",
    )
    flush_timeout_s: float = Field(
        default=5.0, ge=0, description="Time outputs get to flush on shutdown"
    )
