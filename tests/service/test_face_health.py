"""Modality health and the already-cropped path of the face stage (constructed cases)."""

from __future__ import annotations

import numpy as np
import pytest

from models.crop import template
from sensors.bundle import BundleError, FrameBundle
from service.face.config import FaceStageConfig
from service.face.health import assess
from service.face.stage import FaceStage
from service.face.types import Reason


def _textured(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(60, 200, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return np.kron(base, np.ones((8, 8, 1), np.uint8))[:h, :w].copy()


def _depth(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / (w * w / 4)
    return (600 + 80 * r2).astype(np.uint16)  # a dome: nearest in the middle


def _ir(h: int, w: int) -> np.ndarray:
    return _textured(h, w, 1)[..., 0].copy()


def test_healthy_bundle_all_usable() -> None:
    h = assess(FrameBundle(rgb=_textured(120, 160), depth=_depth(120, 160), ir=_ir(120, 160)))
    assert list(h) == ["rgb", "depth", "ir"]
    assert all(v.usable for v in h.values()), h


@pytest.mark.parametrize(
    ("modality", "array", "why"),
    [
        ("rgb", np.zeros((120, 160, 3), np.uint8), "all zeros"),
        ("rgb", np.full((120, 160, 3), 255, np.uint8), "saturated"),
        ("rgb", np.full((120, 160, 3), 128, np.uint8), "constant"),
        ("depth", np.zeros((120, 160), np.uint16), "all zeros"),
        ("depth", np.full((120, 160), 700, np.uint16), "constant"),
        ("ir", np.zeros((120, 160), np.uint8), "all zeros"),
        ("ir", np.full((120, 160), 65535, np.uint16), "saturated"),
    ],
)
def test_broken_modality_is_unusable(modality: str, array: np.ndarray, why: str) -> None:
    h = assess(FrameBundle(**{modality: array}))
    assert not h[modality].usable
    assert why in (h[modality].reason or "")


def test_depth_mostly_holes_is_dropped_from_cropped_faces() -> None:
    depth = _depth(128, 128)
    holes = np.random.default_rng(0).random(depth.shape) < 0.995
    depth[holes] = 0
    stage = FaceStage(FaceStageConfig(), input_size=64)
    res = stage.process_cropped(FrameBundle(rgb=_textured(128, 128), depth=depth, ir=_ir(128, 128)))
    assert res.modalities_received == ("rgb", "depth", "ir")
    assert res.modalities_used == ("rgb", "ir")
    assert Reason.DEPTH_UNUSABLE in res.reasons
    assert not res.health["depth"].usable and "holes" in (res.health["depth"].reason or "")
    assert res.faces[0].crops.depth is None and res.faces[0].crops.present == ("rgb", "ir")


def test_depth_holes_in_the_face_keep_depth_but_flag_the_face() -> None:
    depth = _depth(128, 128)
    depth[np.random.default_rng(0).random(depth.shape) < 0.6] = 0
    stage = FaceStage(FaceStageConfig(), input_size=64)
    res = stage.process_cropped(FrameBundle(rgb=_textured(128, 128), depth=depth))
    assert res.modalities_used == ("rgb", "depth") and res.reasons == []
    assert Reason.DEPTH_HOLES in res.faces[0].reasons


def test_nothing_usable() -> None:
    stage = FaceStage(FaceStageConfig(), input_size=64)
    res = stage.process_cropped(FrameBundle(depth=np.zeros((64, 64), np.uint16)))
    assert res.faces == [] and res.modalities_used == ()
    assert res.reasons == [Reason.DEPTH_UNUSABLE, Reason.NO_USABLE_MODALITY]


def test_cropped_resizes_every_modality_and_keeps_depth_values() -> None:
    stage = FaceStage(FaceStageConfig(), input_size=112)
    depth = _depth(200, 200)
    depth[:, :100] = 500  # a sharp step: nearest-neighbour must not blend across it
    res = stage.process_cropped(
        FrameBundle(rgb=_textured(200, 200), depth=depth, ir=_ir(200, 200), depth_scale=0.001)
    )
    (face,) = res.faces
    assert face.crops.rgb is not None and face.crops.rgb.shape == (112, 112, 3)
    assert face.crops.ir is not None and face.crops.ir.shape == (112, 112)
    assert face.crops.depth is not None and face.crops.depth.shape == (112, 112)
    assert face.crops.depth.dtype == np.uint16
    assert set(np.unique(face.crops.depth)) <= set(np.unique(depth))
    np.testing.assert_array_equal(face.detection.box, [0, 0, 200, 200])
    np.testing.assert_allclose(face.detection.landmarks, template(112) * 200 / 112)
    assert res.detector == "cropped" and res.modalities_used == ("rgb", "depth", "ir")
    assert {"brightness", "sharpness", "depth_holes", "ir_saturated"} <= set(face.quality)


def test_cropped_rejects_misregistered_bundle() -> None:
    stage = FaceStage(FaceStageConfig(), input_size=64)
    with pytest.raises(BundleError):
        stage.process_cropped(FrameBundle(rgb=_textured(100, 100), depth=_depth(90, 100)))


def test_cropped_dark_face_is_flagged() -> None:
    stage = FaceStage(FaceStageConfig(), input_size=64)
    rgb = (_textured(128, 128) // 8).astype(np.uint8)
    res = stage.process_cropped(FrameBundle(rgb=rgb))
    assert res.modalities_used == ("rgb",)
    assert Reason.TOO_DARK in res.faces[0].reasons and not res.faces[0].acceptable
