"""Configuration of the face stage (embedded in the service and daemon settings)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class FaceStageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    detector: Literal["auto", "mtcnn", "depth"] = Field(
        default="auto",
        description="'mtcnn': CNN detector on RGB (or IR when RGB is absent); 'depth': nearest "
        "head-sized blob in depth (RGB-D/IR-D without a usable RGB face); 'auto': mtcnn, then "
        "the depth path when mtcnn finds nothing and depth is present.",
    )
    min_face_px: int = Field(default=40, ge=12, description="Smallest face side (pixels) detected")
    max_faces: int = Field(default=5, ge=1, le=100, description="Faces returned per frame at most")
    detection_threshold: float = Field(
        default=0.9, gt=0, lt=1, description="Final detector confidence to accept a face"
    )
