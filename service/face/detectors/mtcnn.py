"""MTCNN (Zhang et al. 2016) face detector with 5 landmarks, on ONNX Runtime + numpy.

Cascade: an image pyramid chosen from ``min_face_px`` → P-Net (fully convolutional,
12×12 windows at stride 2) → NMS → R-Net on 24×24 crops → O-Net on 48×48 crops (box
refinement + landmarks) → NMS. The ONNX graphs (models/face_detector, converted from the
facenet-pytorch 2.6.0 wheel) take float32 NHWC **RGB** pixels in 0–255 and apply MTCNN's
``(x - 127.5) / 128`` themselves. Coordinates here are 0-based, continuous pixels.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

from models.face_detector import onnx_path
from service.face.config import FaceStageConfig
from service.face.detectors.base import FaceDetector, register_detector, sort_and_limit
from service.face.types import Detection
from service.onnx_runtime import inference_session, session_options

log = logging.getLogger(__name__)

#: Per-stage score thresholds (P-Net, R-Net, O-Net). The reference uses (0.6, 0.7, 0.7);
#: 0.8/0.8 send ~half the windows to R-Net (~0.1 ms each on one core) and O-Net
#: (~0.5 ms each) with the same recall on the test portraits under rotation, scale,
#: brightness and JPEG perturbations and on the synthetic scenes. The O-Net threshold is
#: raised to ``FaceStageConfig.detection_threshold``.
THRESHOLDS = (0.8, 0.8, 0.7)
#: O-Net's landmarks jitter with the box it is shown (up to ~6% of the eye distance when
#: the detection box moves by a few pixels); a second O-Net look at the final, regressed
#: box, averaged with the first, halves that. It costs one O-Net pass (~0.5 ms) per face
#: and moves the aligned landmarks by only ~0.1 px at 112 px on average, so it is off by
#: default to keep the stage within its 10 ms budget.
REFINE_LANDMARKS = False
#: Pyramid step (the reference value: each level is 0.709× the previous one).
PYRAMID_FACTOR = 0.709
#: NMS overlap of the P-Net candidates across scales (reference: 0.7). 0.4 sends ~40%
#: fewer windows to R-Net (~0.1 ms each on one core) with the same recall on the tests.
PNET_NMS_IOU = 0.4
#: NMS overlap after R-Net. The reference keeps IoU ≤ 0.7 (several boxes per face reach
#: O-Net, ~0.5 ms each on one core); 0.5 leaves about one per face with the same recall.
RNET_NMS_IOU = 0.5
#: P-Net candidates kept per image after the cross-scale NMS (bounds R-Net cost).
MAX_PNET_CANDIDATES = 100


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, mode: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, best score first.

    ``mode="union"`` (IoU) runs in OpenCV's C++ NMS (P-Net yields hundreds of boxes;
    scores must be positive); ``mode="min"`` (intersection over the smaller box) in numpy.
    """
    if len(boxes) <= 1:
        return np.arange(len(boxes), dtype=np.int64)
    if mode == "union":
        xywh = np.stack(
            [boxes[:, 0], boxes[:, 1], boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], 1
        )
        # numpy arrays are accepted at run time; the stubs only name sequences.
        rects: Any = xywh.astype(np.float64)
        confidences: Any = scores.astype(np.float32)
        keep = cv2.dnn.NMSBoxes(rects, confidences, 0.0, float(iou))
        return np.asarray(keep, dtype=np.int64).reshape(-1)
    return nms_numpy(boxes, scores, iou, mode)


def nms_numpy(boxes: np.ndarray, scores: np.ndarray, iou: float, mode: str = "union") -> np.ndarray:
    """Reference greedy NMS in numpy (``union``: IoU; ``min``: over the smaller box)."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        if mode == "min":
            overlap = inter / np.maximum(np.minimum(area[i], area[rest]), 1e-9)
        else:
            overlap = inter / np.maximum(area[i] + area[rest] - inter, 1e-9)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


def square(boxes: np.ndarray) -> np.ndarray:
    """Boxes made square around their centre (side = the longer side)."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w / 2 - side / 2
    out[:, 1] = boxes[:, 1] + h / 2 - side / 2
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Apply MTCNN's box regression (offsets as fractions of the box side)."""
    w = (boxes[:, 2] - boxes[:, 0])[:, None]
    h = (boxes[:, 3] - boxes[:, 1])[:, None]
    out = boxes.copy()
    out[:, 0:4] = boxes[:, 0:4] + reg * np.hstack([w, h, w, h])
    return out


def octaves(image: np.ndarray, smallest: int) -> list[np.ndarray]:
    """Gaussian pyramid (``cv2.pyrDown``): octave ``o`` is the image at scale 2**-o.

    Every resampling below starts from the nearest octave and shrinks by at most 2×, so
    bilinear interpolation does not alias and no slow INTER_AREA pass is needed.
    """
    out = [image]
    while min(out[-1].shape[:2]) // 2 >= smallest:
        out.append(cv2.pyrDown(out[-1]))
    return out


def resize_from_octaves(levels: list[np.ndarray], width: int, height: int) -> np.ndarray:
    """``levels[0]`` resized to width×height, via the smallest octave still larger."""
    src = levels[0]
    for lvl in levels:
        if lvl.shape[1] >= width and lvl.shape[0] >= height:
            src = lvl
    return cv2.resize(src, (width, height), interpolation=cv2.INTER_LINEAR)


def crop_patches(levels: list[np.ndarray], boxes: np.ndarray, side: int) -> np.ndarray:
    """Square box crops resized to ``side`` (zeros outside the image) → float32 NHWC.

    One ``cv2.remap`` per octave samples all boxes of that size class at once.
    """
    n = len(boxes)
    out = np.zeros((n, side, side, 3), dtype=np.float32)
    if n == 0:
        return out
    bw = np.maximum(boxes[:, 2] - boxes[:, 0], 1.0)
    bh = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
    octave = np.clip(np.floor(np.log2(np.maximum(bw, bh) / side)), 0, len(levels) - 1)
    grid = (np.arange(side, dtype=np.float64) + 0.5) / side  # sample centres in the box
    for o in np.unique(octave).astype(int):
        idx = np.nonzero(octave == o)[0]
        f = 2.0**-o
        # Continuous coords (pixel centre at i + 0.5) → octave pixel index.
        mx = (boxes[idx, 0:1] + grid[None, :] * bw[idx, None]) * f - 0.5  # (k, side)
        my = (boxes[idx, 1:2] + grid[None, :] * bh[idx, None]) * f - 0.5
        map_x = np.broadcast_to(mx[:, None, :], (len(idx), side, side))
        map_y = np.broadcast_to(my[:, :, None], (len(idx), side, side))
        patches = cv2.remap(
            levels[o],
            map_x.reshape(-1, side).astype(np.float32),
            map_y.reshape(-1, side).astype(np.float32),
            interpolation=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        out[idx] = patches.reshape(len(idx), side, side, 3)
    return out


def pyramid_scales(height: int, width: int, min_face_px: int, factor: float) -> list[float]:
    """Scales at which a ``min_face_px`` face becomes P-Net's 12-pixel window, and smaller."""
    m = 12.0 / float(min_face_px)
    side = min(height, width) * m
    scales = []
    while side >= 12:
        scales.append(m)
        m *= factor
        side *= factor
    return scales


class MTCNNDetector:
    """The three-stage cascade; one ORT session per network."""

    name = "mtcnn"

    def __init__(
        self,
        config: FaceStageConfig,
        weights_dir: Path | None = None,
        providers: list[str] | None = None,
        thresholds: tuple[float, float, float] = THRESHOLDS,
        refine_landmarks: bool = REFINE_LANDMARKS,
    ) -> None:
        self.config = config
        # Never spin (session_options' default). These convolutions are tiny, so a second
        # thread only pays off when its worker spins between operators: P-Net level 0 took
        # 2.8 ms on one thread, 1.8 ms on two spinning, 3.2 ms on two blocking -- on an idle
        # host. On a shared host the spinning workers fight every other process: the whole
        # stage went from 11 ms to 42 ms p50. One thread (the default) is the robust choice.
        opts = session_options(config.detector_threads, sequential=True)
        prov = providers or ["CPUExecutionProvider"]
        self._sessions: dict[str, ort.InferenceSession] = {}
        for net in ("pnet", "rnet", "onet"):
            path = (weights_dir / f"{net}.onnx") if weights_dir else onnx_path(net)
            if not path.is_file():
                raise FileNotFoundError(f"MTCNN weights missing: {path}")
            self._sessions[net] = inference_session(path, opts, prov)
        self.refine_landmarks = refine_landmarks
        self.thresholds = (
            thresholds[0],
            thresholds[1],
            max(thresholds[2], config.detection_threshold),
        )

    def _run(self, net: str, batch: np.ndarray) -> list[np.ndarray]:
        out: list[np.ndarray] = self._sessions[net].run(None, {"image": batch})
        return out

    def warmup(self) -> None:
        t0 = time.perf_counter()
        rng = np.random.default_rng(0)
        self.detect(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8))
        self._run("rnet", np.zeros((4, 24, 24, 3), np.float32))
        self._run("onet", np.zeros((4, 48, 48, 3), np.float32))
        log.debug("mtcnn warm-up %.1f ms", (time.perf_counter() - t0) * 1000)

    # -- stages -------------------------------------------------------------------------
    def _stage1(
        self,
        levels: list[np.ndarray],
        min_face_px: int,
        roi: tuple[int, int, int, int] | None = None,
    ) -> np.ndarray:
        """P-Net over the pyramid → candidate boxes [x1, y1, x2, y2, score] (squared).

        With ``roi`` (x0, y0, x1, y1), P-Net only sees that part of each level, cut on
        its stride-2 grid, so every window it scores is the very window the whole-frame
        pass would score: the pyramid, and R-/O-Net's crops, stay those of the full frame.
        """
        H, W = levels[0].shape[:2]
        found = []
        for scale in pyramid_scales(H, W, min_face_px, PYRAMID_FACTOR):
            hs, ws = int(H * scale + 1), int(W * scale + 1)
            sx, sy = ws / W, hs / H
            lx0 = ly0 = 0
            if roi is not None:
                lx0 = int(roi[0] * sx) // 2 * 2
                ly0 = int(roi[1] * sy) // 2 * 2
                lx1 = min(ws, int(np.ceil(roi[2] * sx)))
                ly1 = min(hs, int(np.ceil(roi[3] * sy)))
                if lx1 - lx0 < 12 or ly1 - ly0 < 12:
                    continue  # a face this large would not fit in the region: no resize
            level = resize_from_octaves(levels, ws, hs)
            if roi is not None:
                level = level[ly0:ly1, lx0:lx1]
            reg, prob = self._run("pnet", level[None].astype(np.float32))
            score = prob[0, 1]
            ys, xs = np.nonzero(score >= self.thresholds[0])
            if ys.size == 0:
                continue
            gx = lx0 + 2.0 * xs
            gy = ly0 + 2.0 * ys
            boxes = np.stack(
                [gx / sx, gy / sy, (gx + 12.0) / sx, (gy + 12.0) / sy, score[ys, xs]], axis=1
            )
            offsets = reg[0][:, ys, xs].T
            keep = nms(boxes[:, :4], boxes[:, 4], 0.5)
            found.append(np.hstack([boxes[keep], offsets[keep]]))
        if not found:
            return np.zeros((0, 5))
        cand = np.vstack(found)
        keep = nms(cand[:, :4], cand[:, 4], PNET_NMS_IOU)[:MAX_PNET_CANDIDATES]
        cand = cand[keep]
        return square(regress(cand[:, :5], cand[:, 5:9]))

    def _stage2(self, levels: list[np.ndarray], boxes: np.ndarray) -> np.ndarray:
        reg, prob = self._run("rnet", crop_patches(levels, boxes, 24))
        ok = prob[:, 1] > self.thresholds[1]
        boxes = boxes[ok].copy()
        boxes[:, 4] = prob[ok, 1]
        reg = reg[ok]
        keep = nms(boxes[:, :4], boxes[:, 4], RNET_NMS_IOU)
        return square(regress(boxes[keep], reg[keep]))

    def _stage3(self, levels: list[np.ndarray], boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        reg, pts, prob = self._run("onet", crop_patches(levels, boxes, 48))
        ok = prob[:, 1] > self.thresholds[2]
        boxes = boxes[ok].copy()
        boxes[:, 4] = prob[ok, 1]
        pts, reg = pts[ok], reg[ok]
        w = (boxes[:, 2] - boxes[:, 0])[:, None]
        h = (boxes[:, 3] - boxes[:, 1])[:, None]
        lx = boxes[:, 0:1] + pts[:, 0:5] * w
        ly = boxes[:, 1:2] + pts[:, 5:10] * h
        landmarks = np.stack([lx, ly], axis=2)  # (N, 5, 2)
        boxes = regress(boxes, reg)
        keep = nms(boxes[:, :4], boxes[:, 4], 0.7, mode="min")
        return boxes[keep], landmarks[keep]

    # -- API ----------------------------------------------------------------------------
    def detect(
        self,
        image_rgb: np.ndarray,
        *,
        min_face_px: int | None = None,
        max_faces: int | None = None,
        roi: tuple[int, int, int, int] | None = None,
    ) -> list[Detection]:
        """Faces in an RGB uint8 image (grey H×W is accepted), largest first.

        ``roi`` (x0, y0, x1, y1) restricts the search to faces whose windows lie there.
        """
        image = image_rgb
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an H×W×3 RGB image, got shape {image.shape}")
        mfp = int(min_face_px or self.config.min_face_px)
        levels = octaves(image, 12)
        boxes = self._stage1(levels, mfp, roi)
        if len(boxes):
            boxes = self._stage2(levels, boxes)
        if not len(boxes):
            return []
        boxes, landmarks = self._stage3(levels, boxes)
        order = np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
        order = order[:max_faces] if max_faces is not None else order
        boxes, landmarks = boxes[order], landmarks[order]
        if self.refine_landmarks and len(boxes):
            landmarks = (landmarks + self._landmarks(levels, square(boxes))) / 2.0
        dets = [
            Detection(
                box=b[:4].astype(np.float64),
                landmarks=lm.astype(np.float64),
                confidence=float(b[4]),
            )
            for b, lm in zip(boxes, landmarks, strict=True)
        ]
        return sort_and_limit(dets, max_faces)

    def _landmarks(self, levels: list[np.ndarray], boxes: np.ndarray) -> np.ndarray:
        """O-Net landmarks of crops centred on the final (regressed) boxes."""
        _, pts, _ = self._run("onet", crop_patches(levels, boxes, 48))
        w = (boxes[:, 2] - boxes[:, 0])[:, None]
        h = (boxes[:, 3] - boxes[:, 1])[:, None]
        return np.stack([boxes[:, 0:1] + pts[:, 0:5] * w, boxes[:, 1:2] + pts[:, 5:10] * h], 2)


@register_detector("mtcnn")
def create_mtcnn(config: FaceStageConfig) -> FaceDetector:
    return MTCNNDetector(config)
