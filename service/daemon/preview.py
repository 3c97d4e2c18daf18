"""The live preview: the latest analysed frame, every sensor side by side with the face
boxes, per-modality health, and the last decisions with a snapshot of each face.

Only the latest frame and the last :data:`EVENT_SNAPSHOTS` decisions are kept, in memory
(bounded, never written anywhere); the frame is drawn and JPEG-encoded lazily, at most
once per frame, when a browser asks for it.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from sensors.bundle import MODALITIES, FrameBundle
from service.daemon.tracker import TrackUpdate

#: BGR colours per decision
COLOURS = {"live": (60, 200, 60), "spoof": (40, 40, 230), "uncertain": (0, 190, 255)}
#: Decisions kept, with their snapshot, for the page's event list.
EVENT_SNAPSHOTS = 20
#: Height of a decision's face snapshot (pixels).
SNAPSHOT_PX = 96


def _ir8(ir: np.ndarray) -> np.ndarray:
    if ir.dtype == np.uint8:
        return ir
    top = max(1.0, float(np.percentile(ir, 99.5)))
    return np.clip(ir.astype(np.float32) * (255.0 / top), 0, 255).astype(np.uint8)


#: Depth range (m) the preview's colour scale spans from the nearest surface.
DEPTH_SPAN_M = 0.4


def depth_colour(depth: np.ndarray, depth_scale: float = 0.001) -> np.ndarray:
    """Depth as a BGR picture: near warm, far cool (TURBO from the nearest surface — the
    2nd percentile of the valid pixels — over :data:`DEPTH_SPAN_M`, so a face's relief
    shows and the room behind saturates), holes black."""
    valid = depth > 0
    out = np.zeros((*depth.shape, 3), np.uint8)
    if not valid.any():
        return out
    lo, far = (float(v) for v in np.percentile(depth[valid], [2, 98]))
    hi = min(far, lo + DEPTH_SPAN_M / max(depth_scale, 1e-9))
    scale = 255.0 / max(1.0, hi - lo)
    near = 255 - np.clip((depth.astype(np.float32) - lo) * scale, 0, 255).astype(np.uint8)
    coloured = cv2.applyColorMap(near, cv2.COLORMAP_TURBO)
    out[valid] = coloured[valid]
    return out


def panels(bundle: FrameBundle) -> list[tuple[str, np.ndarray]]:
    """(modality, BGR picture) for every modality the bundle carries, in the one order."""
    out: list[tuple[str, np.ndarray]] = []
    for m in MODALITIES:
        arr = getattr(bundle, m)
        if arr is None:
            continue
        if m == "rgb":
            out.append((m, cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)))
        elif m == "depth":
            out.append((m, depth_colour(arr, bundle.depth_scale)))
        else:
            out.append((m, cv2.cvtColor(_ir8(arr), cv2.COLOR_GRAY2BGR)))
    return out


def display_image(bundle: FrameBundle) -> np.ndarray:
    """The first sensor's picture (colour if present, else depth, else IR)."""
    return panels(bundle)[0][1]


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


def mosaic(
    bundle: FrameBundle, faces: list[TrackUpdate], health: dict[str, dict[str, Any]] | None = None
) -> np.ndarray:
    """Every sensor side by side (registered: the same boxes on each), each named, with a
    red label on a modality the pipeline did not use."""
    health = health or {}
    tiles = []
    for m, image in panels(bundle):
        tile = draw(image, faces)
        state = health.get(m, {}).get("state", "used")
        name = {"rgb": "colour", "depth": "depth", "ir": "IR"}[m]
        text = name if state == "used" else f"{name}: {health[m].get('reason') or state}"
        colour = (230, 230, 230) if state == "used" else (40, 40, 230)
        cv2.putText(tile, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3)
        cv2.putText(tile, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1)
        tiles.append(tile)
    return np.hstack(tiles)


def modality_health(
    received: list[str], used: list[str], reasons: list[str]
) -> dict[str, dict[str, Any]]:
    """Per modality: ``used``, ``dropped`` (received, not used; ``reason`` the frame's code
    for it, e.g. ``depth_unusable``) or ``absent``."""
    out: dict[str, dict[str, Any]] = {}
    for m in MODALITIES:
        if m in used:
            out[m] = {"state": "used"}
        elif m in received:
            code = f"{m}_unusable"
            out[m] = {"state": "dropped", "reason": code if code in reasons else None}
        else:
            out[m] = {"state": "absent"}
    return out


def snapshot(bundle: FrameBundle, box: tuple[float, float, float, float]) -> bytes | None:
    """A small JPEG of the face (the first sensor's picture, 20 % margin), or None."""
    image = display_image(bundle)
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    mx, my = 0.2 * (x2 - x1), 0.2 * (y2 - y1)
    xa, ya = max(0, int(x1 - mx)), max(0, int(y1 - my))
    xb, yb = min(w, int(x2 + mx)), min(h, int(y2 + my))
    if xb - xa < 2 or yb - ya < 2:
        return None
    crop = image[ya:yb, xa:xb]
    f = SNAPSHOT_PX / crop.shape[0]
    crop = cv2.resize(crop, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return buf.tobytes() if ok else None


@dataclass
class PreviewState:
    max_width: int = 640
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _bundle: FrameBundle | None = None
    _faces: list[TrackUpdate] = field(default_factory=list)
    _summary: dict[str, Any] = field(default_factory=dict)
    _seq: int = -1
    _jpeg: tuple[int, bytes] | None = None
    _events: deque[tuple[dict[str, Any], bytes | None]] = field(
        default_factory=lambda: deque(maxlen=EVENT_SNAPSHOTS)
    )
    _event_ids: Any = field(default_factory=lambda: itertools.count(1))

    def add_decision(self, event: dict[str, Any], bundle: FrameBundle) -> None:
        """Keep a decision (its event fields and a snapshot of the face) for the page."""
        box = tuple(float(v) for v in event["box"])
        jpeg = snapshot(bundle, box)  # type: ignore[arg-type]
        keep = {k: event.get(k) for k in ("track_id", "decision", "previous_decision", "score",
                                          "frames", "reasons", "time", "camera")}  # fmt: skip
        with self._lock:
            keep["id"] = next(self._event_ids)
            keep["snapshot"] = jpeg is not None
            self._events.append((keep, jpeg))

    def events(self) -> list[dict[str, Any]]:
        """The kept decisions, newest first."""
        with self._lock:
            return [dict(e) for e, _ in reversed(self._events)]

    def event_snapshot(self, event_id: int) -> bytes | None:
        with self._lock:
            for e, jpeg in self._events:
                if e["id"] == event_id:
                    return jpeg
        return None

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
            health = self._summary.get("modalities")
        image = mosaic(bundle, faces, health)
        panel_count = len(bundle.present)
        if image.shape[1] > self.max_width * panel_count:
            f = self.max_width * panel_count / image.shape[1]
            image = cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
        if not ok:  # pragma: no cover - encoding a valid uint8 image does not fail
            return None
        result = (seq, buf.tobytes())
        with self._lock:
            self._jpeg = result
        return result
