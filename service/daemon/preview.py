"""The live preview: the latest analysed frame with boxes, track ids, scores and decisions.

Only the latest frame is kept (bounded memory); it is drawn and JPEG-encoded lazily, at
most once per frame, when a browser asks for it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from sensors.bundle import FrameBundle
from service.daemon.tracker import TrackUpdate

#: BGR colours per decision
COLOURS = {"live": (60, 200, 60), "spoof": (40, 40, 230), "uncertain": (0, 190, 255)}


def display_image(bundle: FrameBundle) -> np.ndarray:
    """A BGR uint8 picture of the bundle: RGB if present, else IR, else coloured depth."""
    if bundle.rgb is not None:
        return cv2.cvtColor(bundle.rgb, cv2.COLOR_RGB2BGR)
    if bundle.ir is not None:
        ir = bundle.ir
        if ir.dtype != np.uint8:
            top = max(1.0, float(np.percentile(ir, 99.5)))
            ir = np.clip(ir.astype(np.float32) * (255.0 / top), 0, 255).astype(np.uint8)
        return cv2.cvtColor(ir, cv2.COLOR_GRAY2BGR)
    assert bundle.depth is not None
    depth8 = cv2.convertScaleAbs(bundle.depth, alpha=255.0 / max(1, int(bundle.depth.max())))
    return cv2.applyColorMap(depth8, cv2.COLORMAP_TURBO)


def draw(image: np.ndarray, faces: list[TrackUpdate]) -> np.ndarray:
    out = image.copy()
    scale = max(0.4, out.shape[1] / 1000.0)
    for face in faces:
        colour = COLOURS.get(face.decision, COLOURS["uncertain"])
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 2)
        score = "-" if face.score is None else f"{face.score:.2f}"
        label = f"#{face.track_id} {face.decision} {score}"
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = max(th + 4, y1)
        cv2.rectangle(out, (x1, ty - th - 4), (x1 + tw + 4, ty), colour, -1)
        cv2.putText(out, label, (x1 + 2, ty - 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1)
    return out


@dataclass
class PreviewState:
    max_width: int = 640
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _bundle: FrameBundle | None = None
    _faces: list[TrackUpdate] = field(default_factory=list)
    _summary: dict[str, Any] = field(default_factory=dict)
    _seq: int = -1
    _jpeg: tuple[int, bytes] | None = None

    def update(
        self, seq: int, bundle: FrameBundle, faces: list[TrackUpdate], summary: dict[str, Any]
    ) -> None:
        with self._lock:
            self._seq, self._bundle, self._faces, self._summary = seq, bundle, faces, summary

    @property
    def seq(self) -> int:
        return self._seq

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._summary)

    def jpeg(self) -> tuple[int, bytes] | None:
        """(frame sequence number, JPEG bytes) of the latest frame, or None before any."""
        with self._lock:
            if self._bundle is None:
                return None
            if self._jpeg is not None and self._jpeg[0] == self._seq:
                return self._jpeg
            seq, bundle, faces = self._seq, self._bundle, list(self._faces)
        image = draw(display_image(bundle), faces)
        if image.shape[1] > self.max_width:
            f = self.max_width / image.shape[1]
            image = cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
        if not ok:  # pragma: no cover - encoding a valid uint8 image does not fail
            return None
        result = (seq, buf.tobytes())
        with self._lock:
            self._jpeg = result
        return result
