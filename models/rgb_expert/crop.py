"""The publisher's MiniFASNet crop, built from a FlexLive (MTCNN) face box.

MiniFASNet was trained on crops of the publisher's detector boxes scaled about their centre
by 2.7 (V2) or 4.0 (V1SE). An MTCNN box is narrower, taller and sits higher on the face. We
measured both detectors on 179 real photographs (26 held-out portraits, the publisher's
3 samples, 150 portraits of the face library; ``reference_boxes.json``, recorded with
``reference_boxes.py``) and map an MTCNN box to the publisher's box with the median
relative offsets (:data:`MTCNN_TO_PUBLISHER`, refit with :func:`fit_mapping`).

The crop itself follows the publisher's rules: the scale is capped so the crop fits in the
image, a crop that leaves the image is shifted back inside, and the crop is resized to
80×80 (bilinear).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

SIDE = 80


@dataclass(frozen=True)
class BoxMapping:
    """Publisher box from an MTCNN box [x1, y1, x2, y2] (w, h its size, (cx, cy) its
    centre): centre (cx + dx·w, cy + dy·h), size (sx·w, sy·h)."""

    dx: float
    dy: float
    sx: float
    sy: float


#: Medians over 179 real photographs (``reference_boxes.json``; see the module docstring).
MTCNN_TO_PUBLISHER = BoxMapping(dx=0.008, dy=0.073, sx=1.134, sy=0.877)


def publisher_box(
    box: Sequence[float] | np.ndarray, mapping: BoxMapping = MTCNN_TO_PUBLISHER
) -> tuple[float, float, float, float]:
    """The publisher's ``[x, y, w, h]`` box for an MTCNN ``[x1, y1, x2, y2]`` box."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    w, h = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2 + mapping.dx * w, (y1 + y2) / 2 + mapping.dy * h
    pw, ph = mapping.sx * w, mapping.sy * h
    return cx - pw / 2, cy - ph / 2, pw, ph


def fit_mapping(
    pairs: Iterable[tuple[Sequence[float], Sequence[float]]],
) -> BoxMapping:
    """Median mapping from ``(mtcnn [x1, y1, x2, y2], publisher [x, y, w, h])`` pairs."""
    rows = []
    for m, (px, py, pw, ph) in pairs:
        w, h = m[2] - m[0], m[3] - m[1]
        rows.append(
            (
                (px + pw / 2 - (m[0] + m[2]) / 2) / w,
                (py + ph / 2 - (m[1] + m[3]) / 2) / h,
                pw / w,
                ph / h,
            )
        )
    if not rows:
        raise ValueError("no box pairs to fit")
    med = np.median(np.asarray(rows, dtype=np.float64), axis=0)
    return BoxMapping(*(round(float(v), 3) for v in med))


def crop_window(
    image_shape: tuple[int, ...], box_xywh: Sequence[float], scale: float
) -> tuple[int, int, int, int]:
    """Pixel window ``(left, top, right, bottom)`` (inclusive) of the publisher's crop."""
    height, width = int(image_shape[0]), int(image_shape[1])
    x, y, w, h = (float(v) for v in box_xywh)
    if w <= 0 or h <= 0:
        raise ValueError(f"empty face box {list(box_xywh)}")
    scale = min((height - 1) / h, (width - 1) / w, scale)
    cw, ch = w * scale, h * scale
    cx, cy = x + w / 2, y + h / 2
    left, top, right, bottom = cx - cw / 2, cy - ch / 2, cx + cw / 2, cy + ch / 2
    if left < 0:
        right, left = right - left, 0.0
    if top < 0:
        bottom, top = bottom - top, 0.0
    if right > width - 1:
        left, right = left - (right - width + 1), width - 1.0
    if bottom > height - 1:
        top, bottom = top - (bottom - height + 1), height - 1.0
    return int(left), int(top), int(right), int(bottom)


def expert_crop(image: np.ndarray, box_xywh: Sequence[float], scale: float) -> np.ndarray:
    """The ``SIDE``×``SIDE`` crop of ``image`` (H×W×3, any channel order, uint8)."""
    left, top, right, bottom = crop_window(image.shape, box_xywh, scale)
    patch = image[top : bottom + 1, left : right + 1]
    return cv2.resize(patch, (SIDE, SIDE), interpolation=cv2.INTER_LINEAR)
