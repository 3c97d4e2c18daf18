"""The face stage: FrameBundle → aligned, quality-checked multi-modal face crops.

Full frame (:meth:`FaceStage.process`)::

    modality health → detect (CNN on RGB — around the depth heads first in RGB-D
    frames —, then on IR when RGB is unusable or shows no face, then the depth-assisted
    path) → one similarity transform per face from its 5 landmarks (models.crop)
    applied to every usable modality → quality checks → FaceCandidates

Already aligned crop (:meth:`FaceStage.process_cropped`): health, resize every usable
modality to the model's input size (nearest for depth), one candidate covering the image.
Never imports torch.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

import cv2
import numpy as np

from models.crop import crop_modalities, template
from models.preprocess import FaceCrops
from sensors.bundle import FrameBundle
from service.face import health as health_mod
from service.face.config import DEFAULT_MAX_FACES, FaceStageConfig
from service.face.detectors.depth import foreground_roi
from service.face.quality import assess_face
from service.face.types import Detection, FaceCandidate, FaceStageResult, ModalityHealth, Reason

if TYPE_CHECKING:
    from service.face.detectors.base import FaceDetector
    from service.face.detectors.depth import DepthHeadDetector

log = logging.getLogger(__name__)


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def ir_to_rgb8(ir: np.ndarray) -> np.ndarray:
    """IR (uint8/uint16) → 3-channel uint8 for an RGB-trained detector.

    uint16 IR is stretched by its 99th percentile (NIR exposure varies a lot); uint8 is
    used as is.
    """
    if ir.dtype == np.uint16:
        sub = ir[::4, ::4]
        p99 = float(np.percentile(sub, 99)) if sub.size else 0.0
        scale = 255.0 / p99 if p99 > 0 else 0.0
        ir8 = np.clip(ir.astype(np.float32) * np.float32(scale), 0, 255).astype(np.uint8)
    else:
        ir8 = ir
    return cv2.cvtColor(ir8, cv2.COLOR_GRAY2RGB)


class FaceStage:
    """Detect, align and quality-check faces for a model with ``input_size`` inputs."""

    def __init__(self, config: FaceStageConfig | None = None, input_size: int = 112) -> None:
        if input_size < 16:
            raise ValueError(f"input_size must be at least 16, got {input_size}")
        self.config = config or FaceStageConfig()
        self.input_size = int(input_size)
        # Built lazily: the cropped path needs no detector.
        self._cnn: FaceDetector | None = None
        self._depth: DepthHeadDetector | None = None
        # process() is called from a thread pool; build each detector once. The ORT
        # sessions themselves are safe to run concurrently.
        self._build_lock = threading.Lock()

    # -- collaborators --------------------------------------------------------------
    @property
    def cnn(self) -> FaceDetector:
        if self._cnn is None:
            from service.face.detectors import create_detector

            with self._build_lock:
                if self._cnn is None:
                    self._cnn = create_detector("mtcnn", self.config)
        return self._cnn

    @property
    def depth_detector(self) -> DepthHeadDetector:
        if self._depth is None:
            from service.face.detectors.depth import DepthHeadDetector

            with self._build_lock:
                if self._depth is None:
                    self._depth = DepthHeadDetector(self.config)
        return self._depth

    def warmup(self) -> None:
        """Build the detectors and run each once, so the first request is not slow."""
        t0 = time.perf_counter()
        if self.config.detector in ("auto", "mtcnn"):
            self.cnn.warmup()
        rng = np.random.default_rng(0)
        rgb = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
        depth = rng.integers(400, 900, (480, 640), dtype=np.uint16)
        self.process(FrameBundle(rgb=rgb, depth=depth, ir=rgb[..., 1].copy()))
        self.process_cropped(FrameBundle(rgb=rgb[:200, :200].copy()))
        log.info("face stage warmed up in %.1f ms", _ms(t0))

    # -- helpers --------------------------------------------------------------------
    def _health(
        self, bundle: FrameBundle
    ) -> tuple[dict[str, ModalityHealth], tuple[str, ...], list[Reason]]:
        bundle.validate()
        health = health_mod.assess(bundle, self.config)
        used = health_mod.usable(health)
        reasons = health_mod.dropped_reasons(health)
        for m, h in health.items():
            if not h.usable:
                log.debug("dropping %s: %s", m, h.reason)
        return health, used, reasons

    def _detect(
        self, bundle: FrameBundle, used: tuple[str, ...], max_faces: int
    ) -> tuple[list[Detection], str]:
        cfg = self.config
        mode = cfg.detector
        depth_ok = "depth" in used
        # The depth heads, searched at most once per frame: they guide the CNN's search
        # (RGB, then IR) and are the depth path's answer.
        heads: list[Detection] | None = None

        def depth_heads() -> list[Detection]:
            nonlocal heads
            if heads is None:
                assert bundle.depth is not None
                fx = bundle.intrinsics.fx if bundle.intrinsics is not None else None
                heads = self.depth_detector.detect_depth(bundle.depth, bundle.depth_scale, fx=fx)
            return heads

        if mode == "depth" and depth_ok:
            return depth_heads()[:max_faces], "depth"
        # In RGB-D frames (detector 'auto'), the CNN searches first around the heads that
        # depth shows; the whole frame only when none is found there.
        roi = None
        if depth_ok and mode == "auto" and cfg.depth_roi and ("rgb" in used or "ir" in used):
            assert bundle.depth is not None
            roi = foreground_roi(depth_heads(), bundle.depth.shape[:2])
        dets: list[Detection] = []
        source = ""
        if "rgb" in used:
            assert bundle.rgb is not None
            dets = self._detect_cnn(bundle.rgb, roi, max_faces)
            source = "mtcnn"
        # IR when RGB is absent or unusable, and when RGB shows no face: in the dark, the
        # NIR illuminator still lights the face.
        if not dets and "ir" in used:
            assert bundle.ir is not None
            dets = self._detect_cnn(ir_to_rgb8(bundle.ir), roi, max_faces)
            source = "mtcnn-ir"
        if not dets and depth_ok and mode == "auto":
            dets, source = depth_heads()[:max_faces], "depth"
        return dets, source

    def _detect_cnn(
        self, image: np.ndarray, roi: tuple[int, int, int, int] | None, max_faces: int
    ) -> list[Detection]:
        """The CNN on ``image``; first only inside ``roi`` (around the depth heads).

        Falls back to the whole frame when that region holds no face (a wrong depth blob,
        holes on the face), so depth saves time without losing the nearest faces.
        """
        if roi is not None:
            found = self.cnn.detect(image, max_faces=max_faces, roi=roi)
            if found:
                return found
        return self.cnn.detect(image, max_faces=max_faces)

    # -- full frame -----------------------------------------------------------------
    def process(self, bundle: FrameBundle, max_faces: int | None = None) -> FaceStageResult:
        """Detect, align and quality-check every face (largest first, ``max_faces`` at most)."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        health, used, reasons = self._health(bundle)
        timings["health"] = _ms(t0)
        received = bundle.present
        if not used:
            return FaceStageResult([], received, used, health, reasons, timings)
        limit = DEFAULT_MAX_FACES if max_faces is None else max(1, int(max_faces))

        t0 = time.perf_counter()
        dets, source = self._detect(bundle, used, limit)
        timings["detect"] = _ms(t0)
        if not dets:
            reasons.append(Reason.NO_FACE)
            return FaceStageResult([], received, used, health, reasons, timings, source)

        faces: list[FaceCandidate] = []
        t_align = t_quality = 0.0
        frame_shape = bundle.shape
        arrays = {m: getattr(bundle, m) if m in used else None for m in ("rgb", "depth", "ir")}
        for det in dets:
            t0 = time.perf_counter()
            rgb, depth, ir, M = crop_modalities(
                det.landmarks, self.input_size, arrays["rgb"], arrays["depth"], arrays["ir"]
            )
            crops = FaceCrops(rgb=rgb, depth=depth, ir=ir, depth_scale=bundle.depth_scale)
            t_align += _ms(t0)
            t0 = time.perf_counter()
            quality, face_reasons = assess_face(det, crops, frame_shape, self.config, crop_matrix=M)
            t_quality += _ms(t0)
            faces.append(FaceCandidate(det, crops, quality, face_reasons))
        timings["align"] = t_align
        timings["quality"] = t_quality
        return FaceStageResult(faces, received, used, health, reasons, timings, source)

    # -- already aligned crop -------------------------------------------------------
    def process_cropped(self, bundle: FrameBundle) -> FaceStageResult:
        """An aligned face crop from a client: one candidate whose box is the whole image."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        health, used, reasons = self._health(bundle)
        timings["health"] = _ms(t0)
        received = bundle.present
        if not used:
            return FaceStageResult([], received, used, health, reasons, timings, "cropped")
        t0 = time.perf_counter()
        H, W = bundle.shape
        S = self.input_size

        def resize(img: np.ndarray, nearest: bool = False) -> np.ndarray:
            if img.shape[0] == S and img.shape[1] == S:
                return img
            if nearest:
                interp = cv2.INTER_NEAREST
            elif H > S and W > S:
                interp = cv2.INTER_AREA
            else:
                interp = cv2.INTER_LINEAR
            return cv2.resize(img, (S, S), interpolation=interp)

        crops = FaceCrops(
            rgb=resize(bundle.rgb) if "rgb" in used and bundle.rgb is not None else None,
            depth=resize(bundle.depth, nearest=True)
            if "depth" in used and bundle.depth is not None
            else None,
            ir=resize(bundle.ir) if "ir" in used and bundle.ir is not None else None,
            depth_scale=bundle.depth_scale,
        )
        timings["align"] = _ms(t0)
        # The client aligned it to our convention: the landmarks are the template's.
        landmarks = template(S) * np.array([W / S, H / S])
        det = Detection(
            box=np.array([0.0, 0.0, float(W), float(H)]), landmarks=landmarks, confidence=1.0
        )
        t0 = time.perf_counter()
        quality, face_reasons = assess_face(det, crops, (H, W), self.config, check_geometry=False)
        if min(H, W) < self.config.min_face_px:
            face_reasons.insert(0, Reason.FACE_TOO_SMALL)
        quality["face_px"] = float(min(H, W))
        timings["quality"] = _ms(t0)
        face = FaceCandidate(det, crops, quality, face_reasons)
        return FaceStageResult([face], received, used, health, reasons, timings, "cropped")
