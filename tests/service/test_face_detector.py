"""MTCNN on ONNX Runtime: real portraits, perturbations, multi-face, IR, the registry."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from service.face.config import FaceStageConfig
from service.face.detectors import available_detectors, create_detector, register_detector
from service.face.detectors.mtcnn import MTCNNDetector, nms, nms_numpy, pyramid_scales
from service.face.types import Detection


def _portrait(module: str, rel: str) -> np.ndarray:
    mod = pytest.importorskip(module)
    path = Path(mod.__file__).parent / rel
    bgr = cv2.imread(str(path))
    assert bgr is not None, path
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def portraits() -> dict[str, np.ndarray]:
    return {
        "grace_hopper": _portrait("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
        "astronaut": _portrait("skimage", "data/astronaut.png"),
    }


@pytest.fixture(scope="module")
def detector() -> MTCNNDetector:
    return MTCNNDetector(FaceStageConfig(min_face_px=40))


def _check_anatomy(det: Detection) -> None:
    le, re, nose, ml, mr = det.landmarks
    assert le[0] < re[0], "left eye (image left) must be left of the right eye"
    assert ml[0] < mr[0]
    eye_y = (le[1] + re[1]) / 2
    assert eye_y < nose[1] < (ml[1] + mr[1]) / 2, "eyes above nose above mouth"
    x1, y1, x2, y2 = det.box
    assert np.all(det.landmarks[:, 0] > x1) and np.all(det.landmarks[:, 0] < x2)
    assert np.all(det.landmarks[:, 1] > y1) and np.all(det.landmarks[:, 1] < y2)


def test_portraits_one_face_each(detector: MTCNNDetector, portraits: dict) -> None:
    for name, img in portraits.items():
        dets = detector.detect(img)
        assert len(dets) == 1, (name, [d.box for d in dets])
        assert dets[0].confidence > 0.95
        _check_anatomy(dets[0])


def _rotate(img: np.ndarray, deg: float) -> tuple[np.ndarray, np.ndarray]:
    h, w = img.shape[:2]
    M = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
    return cv2.warpAffine(img, M, (w, h), borderMode=cv2.BORDER_REFLECT), M


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    assert ok
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _scale(img: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    out = cv2.resize(img, None, fx=s, fy=s, interpolation=interp)
    M = np.array([[out.shape[1] / img.shape[1], 0, 0], [0, out.shape[0] / img.shape[0], 0]])
    return out, M


PERTURBATIONS = {
    "rot-20": lambda im: _rotate(im, -20),
    "rot+20": lambda im: _rotate(im, 20),
    "rot-10": lambda im: _rotate(im, -10),
    "rot+10": lambda im: _rotate(im, 10),
    "scale0.5": lambda im: _scale(im, 0.5),
    "scale0.75": lambda im: _scale(im, 0.75),
    "scale1.5": lambda im: _scale(im, 1.5),
    "scale2": lambda im: _scale(im, 2.0),
    "dark0.4": lambda im: ((im * 0.4).astype(np.uint8), None),
    "bright1.5": lambda im: (np.clip(im * 1.5, 0, 255).astype(np.uint8), None),
    "gamma2": lambda im: ((255 * (im / 255.0) ** 2.0).astype(np.uint8), None),
    "jpeg15": lambda im: (_jpeg(im, 15), None),
    "jpeg40": lambda im: (_jpeg(im, 40), None),
}


@pytest.mark.parametrize("perturbation", sorted(PERTURBATIONS))
def test_found_under_perturbation(
    detector: MTCNNDetector, portraits: dict, perturbation: str
) -> None:
    for name, img in portraits.items():
        (ref,) = detector.detect(img)
        out, M = PERTURBATIONS[perturbation](img)
        dets = detector.detect(out)
        assert len(dets) == 1, (name, perturbation, len(dets))
        det = dets[0]
        _check_anatomy(det)
        expected = ref.landmarks if M is None else ref.landmarks @ M[:, :2].T + M[:, 2]
        eye_dist = float(np.linalg.norm(expected[1] - expected[0]))
        err = np.linalg.norm(det.landmarks - expected, axis=1).max()
        # The same face, landmarks consistent with the unperturbed detection.
        assert err < 0.25 * eye_dist, (name, perturbation, err, eye_dist)


def test_multi_face_sorted_by_size_and_max_faces(detector: MTCNNDetector, portraits) -> None:
    a = cv2.resize(portraits["astronaut"], (300, 300), interpolation=cv2.INTER_AREA)
    g = cv2.resize(portraits["grace_hopper"], (200, 234), interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640, 3), 120, np.uint8)
    frame[90:390, 20:320] = a
    frame[120:354, 400:600] = g
    dets = detector.detect(frame)
    assert len(dets) == 2
    sizes = [(d.box[2] - d.box[0]) * (d.box[3] - d.box[1]) for d in dets]
    assert sizes[0] >= sizes[1]
    assert dets[0].box[0] > 380, "the larger face (Grace Hopper, right) comes first"
    one = detector.detect(frame, max_faces=1)
    assert len(one) == 1 and np.allclose(one[0].box, dets[0].box)
    # A min_face_px above both faces finds nothing.
    assert detector.detect(frame, min_face_px=200) == []


def test_no_face_in_texture(detector: MTCNNDetector) -> None:
    rng = np.random.default_rng(0)
    assert detector.detect(np.full((240, 320, 3), 128, np.uint8)) == []
    noise = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    assert detector.detect(noise) == []


def test_ir_like_grey_input(detector: MTCNNDetector, portraits) -> None:
    grey = cv2.cvtColor(portraits["grace_hopper"], cv2.COLOR_RGB2GRAY)
    dets = detector.detect(grey)
    assert len(dets) == 1
    _check_anatomy(dets[0])


def test_pyramid_and_nms_helpers() -> None:
    scales = pyramid_scales(480, 640, 48, 0.709)
    assert scales[0] == pytest.approx(12 / 48)
    assert min(480 * s for s in scales) >= 12
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], float)
    keep = nms(boxes, np.array([0.9, 0.95, 0.5]), 0.5)
    assert keep.tolist() == [1, 2]
    rng = np.random.default_rng(0)
    for _ in range(20):  # OpenCV's NMS == the numpy reference
        n = int(rng.integers(2, 150))
        xy, wh = rng.uniform(0, 300, (n, 2)), rng.uniform(5, 80, (n, 2))
        b, s = np.hstack([xy, xy + wh]), rng.uniform(0.01, 1, n)
        assert nms(b, s, 0.5).tolist() == nms_numpy(b, s, 0.5).tolist()
    assert nms_numpy(boxes, np.array([0.9, 0.95, 0.5]), 0.1, mode="min").tolist() == [1, 2]


def test_registry() -> None:
    assert "mtcnn" in available_detectors()
    with pytest.raises(ValueError, match="already registered"):
        register_detector("mtcnn")(lambda cfg: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(KeyError, match="unknown face detector"):
        create_detector("nope", FaceStageConfig())
