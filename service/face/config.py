"""Configuration of the face stage (embedded in the service and daemon settings).

Flat fields (``quality_*``, ``health_*``) so the service settings can expose them as
plain ``LIVENESS_FACE_*``-style environment variables without nested delimiters.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: Faces analysed per frame at most, unless the caller says otherwise (the service's
#: ``LIVENESS_MAX_FACES`` defaults to it; the face stage itself has no such setting).
DEFAULT_MAX_FACES = 5


class FaceStageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    detector: Literal["auto", "mtcnn", "depth"] = Field(
        default="auto",
        description="'mtcnn': CNN detector on RGB, then on IR when RGB is absent, unusable or "
        "shows no face; 'depth': head-sized blobs in depth (no CNN) when usable depth is "
        "present, otherwise like mtcnn; 'auto': like mtcnn, "
        "but in RGB-D frames the CNN searches around the depth heads first (depth_roi), and "
        "the depth path answers when the CNN finds nothing and depth is present.",
    )
    depth_roi: bool = Field(
        default=True,
        description="detector 'auto' with depth: search the CNN first around the heads that "
        "depth shows, the whole frame only when none is found there (saves R-/O-Net time on "
        "background clutter); false: always the whole frame",
    )
    min_face_px: int = Field(
        default=48,
        ge=12,
        description="Smallest face side (pixels) detected; sets the detector's image pyramid "
        "(the cost grows ~1/min_face_px²: 40 costs ~1.4× the time of 48)",
    )
    detection_threshold: float = Field(
        default=0.9, gt=0, lt=1, description="Final detector confidence to accept a face"
    )
    detector_threads: int = Field(
        default=1, ge=1, le=64, description="ONNX Runtime intra-op threads of the face detector"
    )

    # -- depth-assisted detector (pinhole model of a head-sized blob) -------------------
    depth_fx_px: float = Field(
        default=0.0,
        ge=0,
        description="Focal length (pixels) for the depth detector when the bundle carries no "
        "intrinsics; 0 = assume a ~69° horizontal field of view (RealSense D4xx-like)",
    )
    depth_min_m: float = Field(default=0.15, gt=0, description="Nearest plausible face (m)")
    depth_max_m: float = Field(default=2.5, gt=0, description="Farthest face the depth path finds")

    # -- per-face quality (a failed check is a reason; the service answers uncertain) ---
    quality_min_face_px: int = Field(
        default=60, ge=1, description="Face (box side) smaller than this: face_too_small"
    )
    quality_max_face_fraction: float = Field(
        default=0.85,
        gt=0,
        le=2,
        description="Face box side above this fraction of the shorter frame side: too close",
    )
    quality_min_face_depth_m: float = Field(
        default=0.2, ge=0, description="Median face depth nearer than this (m): face_too_close"
    )
    quality_max_edge_cut: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Fraction of the face box outside the frame above which: face_cut_by_edge",
    )
    quality_min_brightness: float = Field(
        default=40.0, ge=0, le=255, description="Mean face luminance (0-255) below: too_dark"
    )
    quality_max_brightness: float = Field(
        default=215.0, ge=0, le=255, description="Mean face luminance (0-255) above: too_bright"
    )
    quality_min_sharpness: float = Field(
        default=20.0,
        ge=0,
        description="Laplacian variance of the aligned face (at 112 px) below this: blurred",
    )
    quality_max_yaw: float = Field(
        default=0.55,
        gt=0,
        description="|nose offset from the eye midline| / half the eye distance above: pose",
    )
    quality_pitch_range: tuple[float, float] = Field(
        default=(0.25, 0.75),
        description="Allowed (eye→nose) / (eye→mouth) vertical ratio; outside: pose_too_large",
    )
    quality_max_roll_deg: float = Field(
        default=40.0, gt=0, le=180, description="Eye-line tilt (degrees) above: pose_too_large"
    )
    quality_max_depth_holes: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="Fraction of depth holes in the central face region above: depth_holes",
    )
    quality_max_ir_saturated: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="Fraction of saturated IR pixels in the face region above: ir_saturated",
    )

    # -- modality health (a broken received modality is dropped before inference) ------
    health_min_depth_valid: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Depth with fewer valid (non-zero) pixels than this fraction of the frame: "
        "unusable. Low on purpose: a short-range sensor (SR305) sees only the subject; holes "
        "in the face itself are the per-face depth_holes check",
    )
    health_min_std: float = Field(
        default=1.0,
        ge=0,
        description="Standard deviation (8-bit units; depth: mm) at or below which a "
        "modality is constant: unusable",
    )
    health_max_saturated: float = Field(
        default=0.9,
        ge=0,
        le=1,
        description="Fraction of pixels at full scale above which a modality is saturated",
    )
