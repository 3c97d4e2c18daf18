"""Quality rules, each on a constructed case, and the end-to-end reasons of FaceStage."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from models.crop import crop_modalities, template
from models.preprocess import FaceCrops
from sensors.bundle import FrameBundle
from service.face.config import FaceStageConfig
from service.face.quality import assess_face, pose
from service.face.stage import FaceStage
from service.face.types import Detection, Reason

CFG = FaceStageConfig()
S = 112


@pytest.fixture(scope="module")
def face_crop() -> np.ndarray:
    """A real, well-exposed, sharp aligned face crop (Grace Hopper) at 112 px."""
    mpl = pytest.importorskip("matplotlib")
    path = Path(mpl.__file__).parent / "mpl-data/sample_data/grace_hopper.jpg"
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    # Landmarks of this portrait as MTCNN finds them (checked in test_face_detector).
    lm = np.array([[223.3, 194.0], [310.5, 188.8], [270.8, 240.2], [233.6, 279.6], [308.4, 275.6]])
    crop, _, _, _ = crop_modalities(lm, S, rgb=rgb)
    assert crop is not None
    return crop


def _frontal(cx: float = 320, cy: float = 240, eye: float = 60.0) -> Detection:
    """A frontal face of eye distance ``eye`` px centred at (cx, cy) in a 640×480 frame."""
    t = template(S)
    lm = (t - t.mean(0)) * (eye / (t[1, 0] - t[0, 0])) + [cx, cy]
    side = eye * 2.2
    box = np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])
    return Detection(box=box, landmarks=lm, confidence=0.99)


def _reasons(det: Detection, crops: FaceCrops, shape=(480, 640)) -> list[Reason]:
    return assess_face(det, crops, shape, CFG)[1]


def test_good_face_has_no_reasons(face_crop: np.ndarray) -> None:
    q, reasons = assess_face(_frontal(), FaceCrops(rgb=face_crop), (480, 640), CFG)
    assert reasons == []
    assert {"face_px", "edge_cut", "yaw", "pitch", "roll_deg", "brightness", "sharpness"} <= set(q)
    assert all(isinstance(v, float) for v in q.values())


def test_too_dark_and_too_bright(face_crop: np.ndarray) -> None:
    dark = (face_crop * 0.2).astype(np.uint8)
    bright = np.clip(face_crop.astype(np.float32) * 2.2 + 40, 0, 255).astype(np.uint8)
    assert Reason.TOO_DARK in _reasons(_frontal(), FaceCrops(rgb=dark))
    assert Reason.TOO_BRIGHT in _reasons(_frontal(), FaceCrops(rgb=bright))


def test_blurred(face_crop: np.ndarray) -> None:
    blurred = cv2.GaussianBlur(face_crop, (0, 0), 4)
    q, reasons = assess_face(_frontal(), FaceCrops(rgb=blurred), (480, 640), CFG)
    assert Reason.BLURRED in reasons, q["sharpness"]
    mild = cv2.GaussianBlur(face_crop, (0, 0), 0.7)
    assert Reason.BLURRED not in _reasons(_frontal(), FaceCrops(rgb=mild))


def test_size_rules(face_crop: np.ndarray) -> None:
    crops = FaceCrops(rgb=face_crop)
    assert Reason.FACE_TOO_SMALL in _reasons(_frontal(eye=20), crops)
    assert Reason.FACE_TOO_CLOSE in _reasons(_frontal(eye=200), crops)


def test_cut_by_edge(face_crop: np.ndarray) -> None:
    reasons = _reasons(_frontal(cx=20), FaceCrops(rgb=face_crop))
    assert Reason.FACE_CUT_BY_EDGE in reasons
    assert Reason.FACE_CUT_BY_EDGE not in _reasons(_frontal(cx=100), FaceCrops(rgb=face_crop))


def test_pose_from_landmarks(face_crop: np.ndarray) -> None:
    det = _frontal()
    p = pose(det.landmarks)
    assert abs(p["yaw"]) < 0.05 and abs(p["roll_deg"]) < 1 and 0.4 < p["pitch"] < 0.6
    turned = det.landmarks.copy()
    turned[2, 0] += 28  # nose far towards the image-right eye: head turned
    q, reasons = assess_face(
        Detection(det.box, turned, 0.99), FaceCrops(rgb=face_crop), (480, 640), CFG
    )
    assert q["yaw"] > CFG.quality_max_yaw and Reason.POSE_TOO_LARGE in reasons
    nod = det.landmarks.copy()
    nod[2, 1] -= 18  # nose almost at eye level: head tilted back
    assert Reason.POSE_TOO_LARGE in _reasons(
        Detection(det.box, nod, 0.99), FaceCrops(rgb=face_crop)
    )
    # In-plane roll alone is what alignment removes; only an extreme one is flagged.
    c = det.landmarks.mean(0)
    for deg, flagged in ((25, False), (60, True)):
        a = np.radians(deg)
        R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        rolled = (det.landmarks - c) @ R.T + c
        assert pose(rolled)["roll_deg"] == pytest.approx(deg, abs=0.5)
        got = Reason.POSE_TOO_LARGE in _reasons(Detection(det.box, rolled, 0.99), FaceCrops())
        assert got is flagged


def test_depth_holes_and_too_close() -> None:
    yy, xx = np.mgrid[0:S, 0:S]
    depth = (600 + 0.02 * ((xx - 56) ** 2 + (yy - 60) ** 2)).astype(np.uint16)
    q, reasons = assess_face(_frontal(), FaceCrops(depth=depth), (480, 640), CFG)
    assert Reason.DEPTH_HOLES not in reasons and q["depth_m"] == pytest.approx(0.6, abs=0.05)
    holey = depth.copy()
    holey[np.random.default_rng(0).random(depth.shape) < 0.5] = 0
    q, reasons = assess_face(_frontal(), FaceCrops(depth=holey), (480, 640), CFG)
    assert Reason.DEPTH_HOLES in reasons and q["depth_holes"] > 0.4
    near = (depth // 4).astype(np.uint16)  # 0.15 m: closer than a camera can see a face
    assert Reason.FACE_TOO_CLOSE in _reasons(_frontal(), FaceCrops(depth=near))


def test_ir_saturated(face_crop: np.ndarray) -> None:
    ir = cv2.cvtColor(face_crop, cv2.COLOR_RGB2GRAY)
    assert Reason.IR_SATURATED not in _reasons(_frontal(), FaceCrops(ir=ir))
    hot = ir.copy()
    hot[20:90, 25:85] = 255
    q, reasons = assess_face(_frontal(), FaceCrops(ir=hot), (480, 640), CFG)
    assert Reason.IR_SATURATED in reasons and q["ir_saturated"] > 0.5
    hot16 = hot.astype(np.uint16) * 257
    assert Reason.IR_SATURATED in _reasons(_frontal(), FaceCrops(ir=hot16))


def _grace() -> np.ndarray:
    mpl = pytest.importorskip("matplotlib")
    path = Path(mpl.__file__).parent / "mpl-data/sample_data/grace_hopper.jpg"
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def stage() -> FaceStage:
    return FaceStage(FaceStageConfig(), input_size=S)


def test_end_to_end_dark_frame_and_edge(stage: FaceStage) -> None:
    g = cv2.resize(_grace(), (240, 281), interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640, 3), 100, np.uint8)
    frame[100:381, 200:440] = g
    res = stage.process(FrameBundle(rgb=frame))
    assert len(res.faces) == 1 and res.faces[0].reasons == [], res.faces[0].quality
    dark = (frame * 0.15).astype(np.uint8)
    res = stage.process(FrameBundle(rgb=dark))
    assert len(res.faces) == 1 and Reason.TOO_DARK in res.faces[0].reasons
    assert not res.faces[0].acceptable
    # The same face slid half out of the frame on the left.
    edge = np.full((480, 640, 3), 100, np.uint8)
    edge[100:381, 0:130] = g[:, 110:]
    res = stage.process(FrameBundle(rgb=edge))
    assert res.faces and Reason.FACE_CUT_BY_EDGE in res.faces[0].reasons


def test_no_face_reason_and_broken_depth_dropped(stage: FaceStage) -> None:
    rng = np.random.default_rng(1)
    rgb = rng.integers(90, 110, (240, 320, 3), dtype=np.uint8)
    depth = np.zeros((240, 320), np.uint16)
    depth[:10, :10] = 700  # 0.1% valid: mostly holes
    res = stage.process(FrameBundle(rgb=rgb, depth=depth))
    assert res.faces == [] and Reason.NO_FACE in res.reasons
    assert Reason.DEPTH_UNUSABLE in res.reasons and res.modalities_used == ("rgb",)
