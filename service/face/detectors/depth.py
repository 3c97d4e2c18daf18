"""Depth-assisted face detector: the face is the nearest head-sized blob.

Used for depth-only / IR+depth input, or when the CNN finds nothing on RGB-D input. A
pinhole camera (``fx`` from the bundle's intrinsics, the configuration, or a ~69°
horizontal field of view) gives the expected head size in pixels at the blob's distance;
the nose tip is the nearest point of the head, and the five landmarks are a metric face
template projected around it. Landmarks are coarse; the crop is still the one similarity
transform of models.crop.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import cv2
import numpy as np

from sensors.bundle import DEFAULT_HFOV_DEG, focal_from_fov
from service.face.config import FaceStageConfig
from service.face.detectors.base import sort_and_limit
from service.face.types import Detection

log = logging.getLogger(__name__)

#: Head width and height (metres) of an adult, for the expected blob size.
HEAD_WIDTH_M = 0.16
HEAD_HEIGHT_M = 0.23
#: Depth slab (metres) behind the nearest surface that still counts as the same head layer.
HEAD_LAYER_M = 0.30
#: Depth step (metres) between neighbouring (4 px apart) samples that separates objects.
DEPTH_JUMP_M = 0.06
#: Face landmarks (mm) relative to the nose tip, image x right / y down: left eye, right
#: eye, nose, mouth left, mouth right (proportions of the crop template, 64 mm eye distance).
FACE_TEMPLATE_MM = np.array(
    [[-32.0, -36.0], [32.0, -36.0], [0.0, 0.0], [-26.5, 38.0], [26.5, 38.0]], dtype=np.float64
)
#: Margin (fraction of the head size, each side) around depth heads where the CNN
#: searches first in RGB-D frames (:func:`foreground_roi`): the depth head box is coarse.
ROI_MARGIN = 0.35
#: A region of interest larger than this fraction of the frame is not worth cropping.
ROI_MAX_FRACTION = 0.6
_STEP = 4  # work on a 1/4 resolution depth map: a head is still > 10 px there


class DepthHeadDetector:
    """Nearest head-sized blob(s) in a depth map."""

    name = "depth"

    def __init__(self, config: FaceStageConfig) -> None:
        self.config = config

    def _fx(self, width: int, fx: float | None) -> float:
        if fx is not None and fx > 0:
            return float(fx)
        if self.config.depth_fx_px > 0:
            return float(self.config.depth_fx_px)
        return focal_from_fov(width, DEFAULT_HFOV_DEG)

    def detect_depth(
        self,
        depth: np.ndarray,
        depth_scale: float,
        *,
        fx: float | None = None,
        max_faces: int | None = None,
    ) -> list[Detection]:
        """Head-sized blobs within :data:`HEAD_LAYER_M` of the nearest surface."""
        cfg = self.config
        H, W = depth.shape
        f = self._fx(W, fx)
        small = depth[::_STEP, ::_STEP].astype(np.float32) * np.float32(depth_scale)
        valid = (small >= cfg.depth_min_m) & (small <= cfg.depth_max_m)
        if not valid.any():
            return []
        z_near = float(np.percentile(small[valid], 1))
        near = valid & (small <= z_near + HEAD_LAYER_M)
        # Split the layer at depth jumps, so a head is not merged with a wall or an object
        # behind it that happens to lie in the same slab.
        jump_x = np.abs(np.diff(small, axis=1)) > DEPTH_JUMP_M
        jump_y = np.abs(np.diff(small, axis=0)) > DEPTH_JUMP_M
        edge = np.zeros_like(near)
        edge[:, 1:] |= jump_x
        edge[:, :-1] |= jump_x
        edge[1:, :] |= jump_y
        edge[:-1, :] |= jump_y
        layer = cv2.morphologyEx(
            (near & ~edge).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)
        )
        n, labels, stats, _ = cv2.connectedComponentsWithStats(layer, connectivity=8)
        dets: list[Detection] = []
        for i in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[i])
            comp = labels == i
            z = float(np.median(small[comp]))
            head_w = f * HEAD_WIDTH_M / z / _STEP
            head_h = f * HEAD_HEIGHT_M / z / _STEP
            if area < 0.3 * head_w * head_h or w < 0.5 * head_w:
                continue
            det = self._head(small, comp, y, head_w, head_h, z, f)
            if det is not None:
                dets.append(det)
        return sort_and_limit(dets, max_faces)

    def _head(
        self,
        small: np.ndarray,
        comp: np.ndarray,
        top: int,
        head_w: float,
        head_h: float,
        z: float,
        f: float,
    ) -> Detection | None:
        """Head box from the top of a blob; nose tip = nearest point of its face region."""
        y1 = top
        y2 = min(comp.shape[0], int(round(top + head_h)))
        band = comp[y1:y2]
        rows = band.any(axis=1)
        if not rows.any():
            return None
        # Row extents; the median row (not the whole band) so shoulders entering the bottom
        # of the band do not widen the head.
        first = np.where(rows, band.argmax(axis=1), 0)
        last = np.where(rows, band.shape[1] - 1 - band[:, ::-1].argmax(axis=1), 0)
        if (first[rows] == 0).any() or (last[rows] == band.shape[1] - 1).any():
            return None  # touches the left/right frame border: a wall or an object edge
        widths = (last - first + 1)[rows]
        centres = ((first + last) / 2.0)[rows]
        band_w = float(np.median(widths))
        cx = float(np.median(centres))
        # How well the top of the blob matches a head's width at this distance.
        fit = min(band_w, head_w) / max(band_w, head_w)
        if fit < 0.5:
            return None
        # Nose tip: nearest valid point in the middle of the expected face.
        fy1, fy2 = int(y1 + 0.35 * head_h), int(y1 + 0.8 * head_h)
        fx1, fx2 = int(cx - 0.25 * head_w), int(cx + 0.25 * head_w) + 1
        region = np.where(comp, small, np.inf)[max(fy1, 0) : fy2, max(fx1, 0) : fx2]
        if region.size and np.isfinite(region).any():
            ny, nx = np.unravel_index(int(np.argmin(region)), region.shape)
            nose = np.array([max(fx1, 0) + nx, max(fy1, 0) + ny], dtype=np.float64)
            z_nose = float(region[ny, nx])
        else:
            nose = np.array([cx, y1 + 0.6 * head_h])
            z_nose = z
        nose_full = (nose + 0.5) * _STEP
        landmarks = nose_full + FACE_TEMPLATE_MM * (f / (z_nose * 1000.0))
        box = np.array(
            [
                (cx - head_w / 2) * _STEP,
                y1 * _STEP,
                (cx + head_w / 2) * _STEP,
                (y1 + head_h) * _STEP,
            ],
            dtype=np.float64,
        )
        return Detection(box=box, landmarks=landmarks, confidence=float(fit))


def foreground_roi(
    heads: Sequence[Detection], shape: tuple[int, int]
) -> tuple[int, int, int, int] | None:
    """Where the CNN should look first in an RGB-D frame of ``shape`` (H, W): the union
    of the depth ``heads`` (from :meth:`DepthHeadDetector.detect_depth`), each widened
    by :data:`ROI_MARGIN` of its size.

    The faces a liveness check is about are the nearest heads; outside them, background
    clutter only costs R-Net and O-Net time. ``None`` when there is no head, or when
    the region would cover most of the frame anyway.
    """
    H, W = shape
    if not heads:
        return None
    boxes = np.array([d.box for d in heads])
    size = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])[:, None]
    grown = boxes + np.hstack([-size, -size, size, size]) * ROI_MARGIN
    x0 = max(0, int(grown[:, 0].min()))
    y0 = max(0, int(grown[:, 1].min()))
    x1 = min(W, int(np.ceil(grown[:, 2].max())))
    y1 = min(H, int(np.ceil(grown[:, 3].max())))
    if x1 <= x0 or y1 <= y0 or (x1 - x0) * (y1 - y0) > ROI_MAX_FRACTION * W * H:
        return None
    return x0, y0, x1, y1
