"""The liveness pipeline: decisions, reasons, unsupported subsets, one bad face alone,
and the full-frame path on a real portrait."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.preprocess import FaceCrops
from sensors.bundle import BundleError, FrameBundle
from service.engine import InferenceEngine
from service.errors import InputError
from service.face.types import Detection, FaceCandidate, FaceStageResult
from service.pipeline import LivenessPipeline, build_face_stage, decide
from service.settings import Settings

S = 64


def textured(level: int, size: int = S) -> np.ndarray:
    rng = np.random.default_rng(level)
    return np.clip(rng.normal(level, 12, (size, size, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def engine(test_model_path: Path) -> InferenceEngine:
    return InferenceEngine.load(test_model_path, providers="cpu", intra_op_threads=1)


@pytest.fixture(scope="module")
def pipeline(engine: InferenceEngine) -> LivenessPipeline:
    settings = Settings(model_path=Path(engine.info.path))
    return LivenessPipeline(engine, build_face_stage(settings.face, S), settings)


@pytest.mark.parametrize(
    ("score", "decision"),
    [(0.56, "live"), (0.55, "live"), (0.549, "uncertain"), (0.5, "uncertain"),
     (0.45, "uncertain"), (0.449, "spoof"), (0.0, "spoof"), (1.0, "live")],
)  # fmt: skip
def test_decision_band(score: float, decision: str) -> None:
    assert decide(score, 0.5, 0.05) == decision


def test_margin_zero_has_no_uncertain_band() -> None:
    assert decide(0.5, 0.5, 0.0) == "live" and decide(0.4999, 0.5, 0.0) == "spoof"


@pytest.mark.parametrize(
    ("score", "spoof_point", "decision"),
    [(0.3, 0.2, "uncertain"), (0.2, 0.2, "uncertain"), (0.199, 0.2, "spoof"),
     (0.44, 0.6, "spoof"), (0.45, 0.6, "uncertain"), (0.6, 0.2, "live")],
)  # fmt: skip
def test_spoof_needs_a_score_below_the_spoof_point_too(
    score: float, spoof_point: float, decision: str
) -> None:
    # t = 0.5, m = 0.05: spoof below min(0.45, spoof point); live from 0.55 as before
    assert decide(score, 0.5, 0.05, spoof_point) == decision


def test_spoof_operating_point_setting(engine: InferenceEngine) -> None:
    """At the strict point (t = 0.8) a face scoring between the eer threshold and t − m is
    spoof with the symmetric band and uncertain when the spoof point is 'eer'."""

    def face_at(**kw: Any) -> Any:
        settings = Settings(model_path=Path(engine.info.path), **kw)
        p = LivenessPipeline(engine, build_face_stage(settings.face, S), settings)
        a = p.analyze(FrameBundle(rgb=textured(150)), cropped=True, operating_point="apcer1")
        return a, a.faces[0]

    a, f = face_at(spoof_operating_point="none")  # the test model has no bpcer1 anyway
    assert f.score is not None and 0.5 <= f.score < 0.75, f.score
    assert f.decision == "spoof" and a.spoof_below == pytest.approx(0.75)
    a, f = face_at(spoof_operating_point="eer")
    assert f.decision == "uncertain" and f.reasons == ["score_near_threshold"]
    assert a.spoof_below == pytest.approx(0.5)
    with pytest.raises(InputError, match="spoof operating point 'bpcer7'"):
        face_at(spoof_operating_point="bpcer7")


def test_cropped_bundle_is_scored(pipeline: LivenessPipeline) -> None:
    depth = np.random.default_rng(1).integers(480, 540, (S, S), dtype=np.uint16)
    analysis = pipeline.analyze(FrameBundle(rgb=textured(190), depth=depth), cropped=True)
    assert analysis.modalities_received == analysis.modalities_used == ["rgb", "depth"]
    (face,) = analysis.faces
    assert face.decision == "live" and face.score is not None and face.score > 0.55
    assert face.box == [0.0, 0.0, S, S] and face.reasons == []
    assert analysis.operating_point == "eer" and analysis.threshold == 0.5
    assert set(analysis.timings_ms) == {"decode", "face", "inference", "rgb_expert", "total"}
    assert analysis.to_dict()["model"]["name"] == "flexlive-test"


def test_near_threshold_is_uncertain_with_a_reason(engine: InferenceEngine) -> None:
    settings = Settings(model_path=Path(engine.info.path), uncertain_margin=0.45)
    p = LivenessPipeline(engine, build_face_stage(settings.face, S), settings)
    (face,) = p.analyze(FrameBundle(rgb=textured(190)), cropped=True).faces
    assert face.decision == "uncertain" and face.reasons == ["score_near_threshold"]
    assert face.score is not None and 0.5 < face.score < 0.95


def test_operating_points(pipeline: LivenessPipeline, engine: InferenceEngine) -> None:
    a = pipeline.analyze(FrameBundle(rgb=textured(150)), cropped=True, operating_point="apcer1")
    assert a.threshold == 0.8 and a.faces[0].decision == "spoof"
    with pytest.raises(InputError) as info:
        pipeline.analyze(FrameBundle(rgb=textured(150)), cropped=True, operating_point="far")
    assert info.value.field == "operating_point"
    with pytest.raises(InputError, match="operating point 'x'"):
        LivenessPipeline(engine, pipeline.face_stage, Settings(operating_point="x"))


def test_invalid_bundle_raises_bundle_error(pipeline: LivenessPipeline) -> None:
    with pytest.raises(BundleError) as info:
        pipeline.analyze(FrameBundle(rgb=textured(150), ir=np.zeros((10, 10), np.uint8)),
                         cropped=True)  # fmt: skip
    assert info.value.field == "ir"


def test_unsupported_subset_is_uncertain_not_guessed(
    tmp_path: Path, build_model: Any, make_spec: Any
) -> None:
    rgb_only = make_spec(supported_subsets=["rgb", "rgb+depth", "rgb+ir", "rgb+depth+ir"])
    eng = InferenceEngine.load(build_model(tmp_path / "m.onnx", spec=rgb_only), providers="cpu")
    settings = Settings(model_path=Path(eng.info.path))
    p = LivenessPipeline(eng, build_face_stage(settings.face, S), settings)
    rng = np.random.default_rng(3)
    bundle = FrameBundle(
        depth=rng.integers(480, 540, (S, S), dtype=np.uint16),
        ir=rng.integers(40, 200, (S, S), dtype=np.uint8),
    )
    a = p.analyze(bundle, cropped=True)
    (face,) = a.faces
    assert face.score is None and face.decision == "uncertain"
    assert "unsupported_modality_subset" in face.reasons
    assert "unsupported_modality_subset" in a.reasons


class _TwoFaces:
    """A face stage that returns a good face and one whose crop is the wrong size."""

    def process(self, bundle: FrameBundle, max_faces: int | None = None) -> FaceStageResult:
        det = Detection(np.array([0, 0, 10, 10.0]), np.zeros((5, 2)), 0.99)
        good = FaceCandidate(det, FaceCrops(rgb=textured(190)))
        bad = FaceCandidate(det, FaceCrops(rgb=textured(190, size=S + 1)))
        return FaceStageResult([bad, good], ("rgb",), ("rgb",), {})

    def process_cropped(self, bundle: FrameBundle) -> FaceStageResult:
        return self.process(bundle)

    def warmup(self) -> None:
        pass


def test_one_bad_face_fails_alone(engine: InferenceEngine) -> None:
    p = LivenessPipeline(engine, _TwoFaces(), Settings())
    bad, good = p.analyze(FrameBundle(rgb=textured(100, size=200)), cropped=False).faces
    assert bad.score is None and bad.decision == "uncertain"
    assert bad.reasons == ["inference_failed"]
    assert good.decision == "live" and good.score is not None


# -- full frame -----------------------------------------------------------------------------
def portrait() -> np.ndarray:
    import cv2

    mpl = pytest.importorskip("matplotlib")
    path = Path(mpl.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def test_full_frame_portrait_has_one_face(pipeline: LivenessPipeline) -> None:
    rgb = portrait()
    a = pipeline.analyze(FrameBundle(rgb=rgb), cropped=False)
    assert a.reasons == [] and len(a.faces) == 1
    face = a.faces[0]
    x1, y1, x2, y2 = face.box
    h, w = rgb.shape[:2]
    assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
    (lex, ley), (rex, rey), (nx, ny), (mlx, mly), (mrx, mry) = face.landmarks
    assert lex < rex and max(ley, rey) < ny < min(mly, mry)
    assert face.score is not None and face.decision in {"live", "spoof", "uncertain"}
    assert a.detector == "mtcnn"


def test_full_frame_without_a_face_reports_no_face(pipeline: LivenessPipeline) -> None:
    a = pipeline.analyze(FrameBundle(rgb=textured(120, size=240)), cropped=False)
    assert a.faces == [] and a.reasons == ["no_face"]


def test_subset_threshold_is_used_for_the_modalities_present(
    tmp_path: Path, build_model: Any, make_spec: Any
) -> None:
    spec = make_spec(subset_operating_points={"rgb": {"eer": 0.99}, "depth+rgb": {"eer": 0.1}})
    engine = InferenceEngine.load(
        build_model(tmp_path / "m.onnx", spec=spec), providers="cpu", intra_op_threads=1
    )
    settings = Settings(model_path=Path(engine.info.path))
    p = LivenessPipeline(engine, build_face_stage(settings.face, S), settings)
    rgb_only = p.analyze(FrameBundle(rgb=textured(190)), cropped=True)
    assert rgb_only.threshold == 0.99 and rgb_only.faces[0].decision == "spoof"
    depth = np.random.default_rng(1).integers(480, 540, (S, S), dtype=np.uint16)
    both = p.analyze(FrameBundle(rgb=textured(190), depth=depth), cropped=True)
    assert both.threshold == 0.1 and both.faces[0].decision == "live"
    # no subset entry for this operating point → the global threshold
    assert (
        p.analyze(FrameBundle(rgb=textured(190)), cropped=True, operating_point="apcer1").threshold
        == 0.8
    )
