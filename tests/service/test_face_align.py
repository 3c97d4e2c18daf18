"""Alignment across modalities on constructed scenes with known ground truth.

A real portrait is pasted into a 640×480 frame under a known similarity transform, so the
ground-truth landmarks in the frame are the portrait's landmarks mapped through it. Depth
and IR are synthetic, registered, and encode their own pixel coordinates, which makes
registration after cropping exactly checkable.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from models.crop import alignment_matrix, transform_points
from sensors.bundle import FrameBundle
from service.face.config import FaceStageConfig
from service.face.detectors.mtcnn import MTCNNDetector
from service.face.stage import FaceStage

S = 112
H, W = 480, 640


def _load(module: str, rel: str) -> np.ndarray:
    mod = pytest.importorskip(module)
    bgr = cv2.imread(str(Path(mod.__file__).parent / rel))
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def portraits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Portrait and its reference landmarks (MTCNN on the untouched image)."""
    det = MTCNNDetector(FaceStageConfig())
    out = {}
    for name, (mod, rel) in {
        "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
        "astronaut": ("skimage", "data/astronaut.png"),
    }.items():
        img = _load(mod, rel)
        (d,) = det.detect(img)
        out[name] = (img, d.landmarks)
    return out


@pytest.fixture(scope="module")
def stage() -> FaceStage:
    return FaceStage(FaceStageConfig(), input_size=S)


def _similarity(deg: float, scale: float, tx: float, ty: float, center) -> np.ndarray:
    M = cv2.getRotationMatrix2D((float(center[0]), float(center[1])), deg, scale)
    M[:, 2] += [tx, ty]
    return M


def _scene(img: np.ndarray, lm: np.ndarray, deg: float, scale: float, dx: float, dy: float):
    """Paste ``img`` so its landmark centroid lands at the frame centre + (dx, dy)."""
    c = lm.mean(0)
    M = _similarity(deg, scale, W / 2 + dx - c[0], H / 2 + dy - c[1], c)
    rng = np.random.default_rng(0)
    bg = rng.integers(70, 110, (H, W, 3), dtype=np.uint8)
    rgb = cv2.warpAffine(img, M, (W, H), borderMode=cv2.BORDER_TRANSPARENT, dst=bg)
    yy, xx = np.mgrid[0:H, 0:W]
    depth = (1000 + xx).astype(np.uint16)  # depth value - 1000 = x of the source pixel
    ir = (yy * 100).astype(np.uint16)  # IR value / 100 = y of the source pixel
    return FrameBundle(rgb=rgb, depth=depth, ir=ir), transform_points(lm, M)


def _crop_error(detected: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-landmark distance (crop pixels) between the crop made from ``detected`` and the
    ideal crop made from the ground truth, measured at the ground-truth landmarks."""
    ideal = transform_points(gt, alignment_matrix(gt, S))
    return np.linalg.norm(transform_points(gt, alignment_matrix(detected, S)) - ideal, axis=1)


CASES = [
    ("grace_hopper", 0, 0.5, 0, 0),
    ("grace_hopper", 15, 0.35, -120, 40),
    ("grace_hopper", -12, 0.8, 60, -20),
    ("astronaut", 0, 1.0, 0, 0),
    ("astronaut", -18, 0.7, 150, 60),
    ("astronaut", 10, 1.6, -40, -30),
]


@pytest.mark.parametrize(("name", "deg", "scale", "dx", "dy"), CASES)
def test_landmark_error_after_alignment(stage, portraits, name, deg, scale, dx, dy) -> None:
    img, lm = portraits[name]
    bundle, gt = _scene(img, lm, deg, scale, dx, dy)
    res = stage.process(bundle)
    assert res.detector == "mtcnn" and len(res.faces) == 1
    face = res.faces[0]
    err = _crop_error(face.detection.landmarks, gt)
    # In the crop, the true landmarks sit within a few pixels of where the ideal crop
    # (aligned on the ground truth itself) puts them.
    assert err.max() < 3.0, err
    assert err.mean() < 2.0, err


@pytest.mark.parametrize(("name", "deg", "scale", "dx", "dy"), CASES[:3])
def test_depth_and_ir_stay_registered(stage, portraits, name, deg, scale, dx, dy) -> None:
    img, lm = portraits[name]
    bundle, _ = _scene(img, lm, deg, scale, dx, dy)
    face = stage.process(bundle).faces[0]
    crops = face.crops
    assert crops.present == ("rgb", "depth", "ir")
    assert crops.depth is not None and crops.ir is not None and crops.rgb is not None
    M = alignment_matrix(face.detection.landmarks, S)
    Minv = cv2.invertAffineTransform(M)
    v, u = np.mgrid[0:S, 0:S]
    src = transform_points(np.stack([u.ravel(), v.ravel()], 1), Minv).reshape(S, S, 2)
    inside = (src[..., 0] > 1) & (src[..., 0] < W - 2) & (src[..., 1] > 1) & (src[..., 1] < H - 2)
    assert inside.mean() > 0.5
    # Depth: nearest neighbour, so every value is an original sample, from the same place.
    dx_src = crops.depth.astype(np.float64) - 1000
    assert np.abs(dx_src - src[..., 0])[inside].max() <= 0.51 + 1e-6
    # IR: bilinear, registered to sub-pixel accuracy.
    y_src = crops.ir.astype(np.float64) / 100
    assert np.abs(y_src - src[..., 1])[inside].max() < 0.05
    # RGB went through the very same transform.
    ref = cv2.warpAffine(bundle.rgb, M, (S, S))
    np.testing.assert_array_equal(crops.rgb, ref)
    # Outside the frame, depth is a hole (0), never an invented value.
    outside = (src[..., 0] < -1) | (src[..., 0] > W) | (src[..., 1] < -1) | (src[..., 1] > H)
    if outside.any():
        assert (crops.depth[outside] == 0).all()


def test_synthetic_scenes_found_and_aligned(stage) -> None:
    """Faces rendered by synth (ground-truth landmarks) are found and aligned."""
    import synth as synth

    errors: list[float] = []
    missed: list[tuple[str, int]] = []
    for species in ("bona_fide", "print_flat", "replay_tablet", "mask_rigid"):
        for seed in range(2):
            sc = synth.render_scene(species, "d435", seed)
            res = stage.process(
                FrameBundle(rgb=sc.rgb, depth=sc.depth, ir=sc.ir, depth_scale=sc.depth_scale)
            )
            if not res.faces:
                missed.append((species, seed))
                continue
            err = _crop_error(res.faces[0].detection.landmarks, sc.landmarks)
            errors.append(float(err.mean()))
    # The renderer is stylised (e.g. yawed heads, paper masks); most faces must be found.
    assert len(missed) <= 2, missed
    # The renderer's landmark definition differs slightly from MTCNN's (mouth corners).
    assert np.median(errors) < 2.5, errors


def _head_scene(
    z_head: float = 0.6, cx: int = 330, top: int = 120, fx: float = 600.0
) -> tuple[np.ndarray, dict[str, float]]:
    """Depth (mm) of a wall at 2 m, a torso, and an ellipsoid head with a nose bump."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    depth = np.full((H, W), 2000.0)
    hw = fx * 0.16 / z_head / 2  # half head width in px
    hh = fx * 0.23 / z_head / 2
    cy = top + hh
    r2 = ((xx - cx) / hw) ** 2 + ((yy - cy) / hh) ** 2
    head = r2 < 1
    depth[head] = z_head * 1000 - 60 * np.sqrt(1 - r2[head])
    nose_y = cy + 0.15 * hh
    nose = ((xx - cx) ** 2 + (yy - nose_y) ** 2) < (0.12 * hw) ** 2
    depth[nose] -= 25
    torso = (yy > cy + hh * 1.1) & (np.abs(xx - cx) < 2.2 * hw)
    depth[torso] = z_head * 1000 + 80
    return depth.astype(np.uint16), {"cx": cx, "nose_y": nose_y, "hw": hw, "fx": fx}


def test_depth_detector_finds_the_nearest_head() -> None:
    depth, geo = _head_scene()
    from sensors.bundle import Intrinsics

    intr = Intrinsics(W, H, geo["fx"], geo["fx"], W / 2, H / 2)
    stage = FaceStage(FaceStageConfig(detector="depth"), input_size=S)
    res = stage.process(FrameBundle(depth=depth, intrinsics=intr))
    assert res.detector == "depth" and len(res.faces) == 1
    det = res.faces[0].detection
    le, re, nose, ml, mr = det.landmarks
    assert le[0] < nose[0] < re[0] and (le[1] + re[1]) / 2 < nose[1] < (ml[1] + mr[1]) / 2
    assert abs(nose[0] - geo["cx"]) < 8 and abs(nose[1] - geo["nose_y"]) < 12
    box_w = det.box[2] - det.box[0]
    assert 1.6 * geo["hw"] < box_w < 2.5 * geo["hw"]
    assert res.faces[0].crops.present == ("depth",)


def test_auto_falls_back_to_depth_when_rgb_has_no_face() -> None:
    depth, _ = _head_scene()
    rgb = np.random.default_rng(3).integers(90, 140, (H, W, 3), dtype=np.uint8)
    res = FaceStage(FaceStageConfig(), input_size=S).process(FrameBundle(rgb=rgb, depth=depth))
    assert res.detector == "depth" and len(res.faces) == 1
    assert res.faces[0].crops.present == ("rgb", "depth")
    strict = FaceStage(FaceStageConfig(detector="mtcnn"), input_size=S)
    assert strict.process(FrameBundle(rgb=rgb, depth=depth)).faces == []


def test_ir_only_frame_uses_the_cnn_on_ir(stage, portraits) -> None:
    img, lm = portraits["grace_hopper"]
    bundle, gt = _scene(img, lm, 5, 0.5, 0, 0)
    ir8 = cv2.cvtColor(bundle.rgb, cv2.COLOR_RGB2GRAY)
    for ir in (ir8, ir8.astype(np.uint16) * 40):  # 8-bit and a dim 16-bit sensor
        res = stage.process(FrameBundle(ir=ir))
        assert res.detector == "mtcnn-ir" and len(res.faces) == 1
        assert _crop_error(res.faces[0].detection.landmarks, gt).max() < 3.0


def test_dark_rgb_falls_back_to_ir(stage, portraits) -> None:
    img, lm = portraits["grace_hopper"]
    bundle, gt = _scene(img, lm, 0, 0.5, 0, 0)
    ir = cv2.cvtColor(bundle.rgb, cv2.COLOR_RGB2GRAY)
    night = (bundle.rgb // 20).astype(np.uint8)  # RGB nearly black, still "usable"
    res = stage.process(FrameBundle(rgb=night, ir=ir))
    assert res.modalities_used == ("rgb", "ir")
    assert res.detector == "mtcnn-ir" and len(res.faces) == 1
    assert _crop_error(res.faces[0].detection.landmarks, gt).max() < 3.0
    assert "too_dark" in [r.value for r in res.faces[0].reasons]


def test_concurrent_calls_share_one_stage(portraits) -> None:
    """The service calls one FaceStage from a thread pool; results must not interfere."""
    from concurrent.futures import ThreadPoolExecutor

    img, lm = portraits["astronaut"]
    bundles = [_scene(img, lm, deg, 0.7, 0, 0)[0] for deg in (-10, 0, 10)]
    fresh = FaceStage(FaceStageConfig(), input_size=S)  # detector built lazily, under load
    serial = [FaceStage(FaceStageConfig(), input_size=S).process(b) for b in bundles]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(fresh.process, bundles * 2))
    for i, res in enumerate(parallel):
        ref = serial[i % 3]
        assert len(res.faces) == len(ref.faces) == 1
        got, want = res.faces[0].detection.landmarks, ref.faces[0].detection.landmarks
        np.testing.assert_allclose(got, want)


def test_depth_roi_is_under_half_the_frame_and_gives_the_full_frame_result(stage) -> None:
    """RGB-D: the CNN searches around the depth head first; same faces, same landmarks."""
    from service.face.detectors.depth import DepthHeadDetector, foreground_roi

    depth, geo = _head_scene(z_head=0.55, cx=420, top=60)
    rgb = np.full((H, W, 3), 110, np.uint8)
    portrait = _load("matplotlib", "mpl-data/sample_data/grace_hopper.jpg")
    face = cv2.resize(portrait, (220, 258), interpolation=cv2.INTER_AREA)
    rgb[20:278, 310:530] = face  # the face lies on the depth head
    heads = DepthHeadDetector(FaceStageConfig()).detect_depth(depth, 0.001)
    roi = foreground_roi(heads, depth.shape)
    assert roi is not None
    x0, y0, x1, y1 = roi
    assert (x1 - x0) * (y1 - y0) < 0.5 * H * W
    full = stage.cnn.detect(rgb)
    assert len(full) == 1
    inside = stage.cnn.detect(rgb, roi=roi)
    assert len(inside) == 1
    np.testing.assert_allclose(inside[0].landmarks, full[0].landmarks, atol=1e-6)
    res = stage.process(FrameBundle(rgb=rgb, depth=depth))
    assert res.detector == "mtcnn" and len(res.faces) == 1
    np.testing.assert_allclose(res.faces[0].detection.box, full[0].box, atol=1e-6)
    # Depth shows a head where RGB has none: the stage falls back to the whole frame.
    far_depth, _ = _head_scene(z_head=0.55, cx=120, top=60)
    res = stage.process(FrameBundle(rgb=rgb, depth=far_depth))
    assert res.detector == "mtcnn" and len(res.faces) == 1
    np.testing.assert_allclose(res.faces[0].detection.box, full[0].box, atol=1e-6)


def test_depth_heads_searched_once_per_frame_and_depth_roi_off(monkeypatch) -> None:
    """RGB and IR show no face: the depth heads guide both searches and are the answer,
    from one depth search. ``depth_roi=False``: the CNN never gets a region."""
    from service.face.detectors.depth import DepthHeadDetector

    depth, _ = _head_scene(z_head=0.55, cx=420, top=60)
    noise = np.random.default_rng(0).integers(90, 130, (H, W, 3), dtype=np.uint8)
    bundle = FrameBundle(rgb=noise, depth=depth, ir=noise[..., 0].copy())
    calls: list[int] = []
    real = DepthHeadDetector.detect_depth

    def counting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(DepthHeadDetector, "detect_depth", counting)
    for depth_roi in (True, False):
        calls.clear()
        st = FaceStage(FaceStageConfig(depth_roi=depth_roi), input_size=S)
        rois: list[object] = []
        real_detect = st.cnn.detect

        def spy(image, *, roi=None, _rois=rois, _detect=real_detect, **kw):  # type: ignore[no-untyped-def]
            _rois.append(roi)
            return _detect(image, roi=roi, **kw)

        monkeypatch.setattr(st.cnn, "detect", spy)
        res = st.process(bundle)
        assert res.detector == "depth" and len(res.faces) == 1
        assert len(calls) == 1
        if depth_roi:
            assert rois[0] is not None and rois[2] is not None and len(rois) == 4
        else:
            assert rois == [None, None]


def test_process_multi_face_max_faces_and_warmup(portraits) -> None:
    stage = FaceStage(FaceStageConfig(), input_size=S)
    stage.warmup()
    a = cv2.resize(portraits["astronaut"][0], (300, 300), interpolation=cv2.INTER_AREA)
    g = cv2.resize(portraits["grace_hopper"][0], (200, 234), interpolation=cv2.INTER_AREA)
    frame = np.full((H, W, 3), 120, np.uint8)
    frame[90:390, 20:320] = a
    frame[120:354, 400:600] = g
    both = stage.process(FrameBundle(rgb=frame))
    assert len(both.faces) == 2
    areas = [float(np.prod(f.detection.box[2:] - f.detection.box[:2])) for f in both.faces]
    assert areas[0] >= areas[1]
    one = stage.process(FrameBundle(rgb=frame), max_faces=1)
    assert len(one.faces) == 1
    np.testing.assert_allclose(one.faces[0].detection.box, both.faces[0].detection.box)
    assert set(both.timings_ms) == {"health", "detect", "align", "quality"}
