"""Deterministic stand-ins for the model, for the daemon's tests and model-free demos.

:class:`MarkerAnalyzer` reads each "face" from the pixels themselves: a face is a square
patch whose centre pixel is pure blue in RGB (0, 0, 255), and its bona fide score is the
red channel of the patch's top-left pixel / 255. A recording written with such patches and
replayed through the SDK therefore drives the daemon to known decisions, exercising
capture, queue, tracking, aggregation and outputs without a network.

:class:`ScriptedSource` injects faults: it plays a script of steps shared across
reopenings (``f`` a frame, ``s`` a stall, ``x`` a device error, ``o`` a refused open).
:class:`ListSource` plays given bundles once, like a file, then ends.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from sensors.base import FrameSource, SourceEnded, SourceError
from sensors.bundle import FrameBundle
from service.daemon.types import Decision, FaceObservation, FrameAnalysis, OperatingPoint

MARKER_SIZE = 40


def paint_face(rgb: np.ndarray, x: int, y: int, score: float, size: int = MARKER_SIZE) -> None:
    """Draw a marker face with its top-left corner at (x, y) and the given score, in place."""
    rgb[y : y + size, x : x + size] = (0, 128, 0)
    rgb[y, x] = (int(round(score * 255)), 0, 0)
    rgb[y + size // 2, x + size // 2] = (0, 0, 255)


class MarkerAnalyzer:
    """Finds marker faces (see module docstring); optional per-frame delay and failures."""

    def __init__(
        self,
        threshold: float = 0.5,
        margin: float = 0.05,
        delay_s: float = 0.0,
        size: int = MARKER_SIZE,
    ) -> None:
        self._op = OperatingPoint("test", threshold, margin)
        self.delay_s = delay_s
        self.size = size
        self.warmed = False
        self.closed = False
        self.calls = 0

    @property
    def operating_point(self) -> OperatingPoint:
        return self._op

    @property
    def model_name(self) -> str:
        return "marker-analyzer"

    def warmup(self) -> None:
        self.warmed = True

    def _decide(self, score: float) -> Decision:
        t, m = self._op.threshold, self._op.margin
        return "live" if score >= t + m else "spoof" if score < t - m else "uncertain"

    def analyze(self, bundle: FrameBundle) -> FrameAnalysis:
        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        faces: list[FaceObservation] = []
        rgb = bundle.rgb
        if rgb is not None:
            half = self.size // 2
            ys, xs = np.nonzero((rgb[:, :, 2] == 255) & (rgb[:, :, 0] == 0) & (rgb[:, :, 1] == 0))
            for cy, cx in zip(ys.tolist(), xs.tolist(), strict=True):
                x, y = cx - half, cy - half
                if x < 0 or y < 0:
                    continue
                score = float(rgb[y, x, 0]) / 255.0
                faces.append(
                    FaceObservation(
                        box=(float(x), float(y), float(x + self.size), float(y + self.size)),
                        score=score,
                        decision=self._decide(score),
                    )
                )
        return FrameAnalysis(
            faces=faces,
            reasons=[] if faces else ["no_face"],
            modalities_received=list(bundle.present),
            modalities_used=list(bundle.present),
        )

    def close(self) -> None:
        self.closed = True


def marker_bundles(
    scores: list[float], *, x0: int = 20, drift: int = 1, width: int = 160, height: int = 120
) -> list[FrameBundle]:
    """One bundle per score: a marker face (drifting right) on black, flat depth and IR."""
    out = []
    for i, score in enumerate(scores):
        rgb = np.zeros((height, width, 3), np.uint8)
        paint_face(rgb, x0 + i * drift % 40, 30, score)
        depth = np.full((height, width), 600, np.uint16)
        ir = np.full((height, width), 90, np.uint8)
        out.append(FrameBundle(rgb=rgb, depth=depth, ir=ir, depth_scale=0.001))
    return out


class ScriptedSource(FrameSource):
    """Plays a script shared across reopenings: 'f' frame, 's' stall (None), 'x' error."""

    kind = "scripted"

    def __init__(self, script: Iterator[str], live: bool = True, period: float = 0.0) -> None:
        super().__init__(None)
        self.script = script
        self.period = period
        self._live = live

    @property
    def live(self) -> bool:  # type: ignore[override]
        return self._live

    def _open(self) -> None:
        step = next(self.script, "f")
        if step == "o":  # refuse to open (camera unplugged)
            raise SourceError("scripted: device not found")

    def _read(self, timeout: float | None) -> FrameBundle | None:
        step = next(self.script, "end")
        if self.period:
            time.sleep(self.period)
        if step == "f":
            return marker_bundles([0.9])[0]
        if step == "s":
            time.sleep(timeout or 0)
            return None
        if step == "x":
            raise SourceError("scripted: USB transfer failed")
        raise SourceEnded("scripted: done")

    def _close(self) -> None:
        pass


class ListSource(FrameSource):
    """A finite, non-live source playing ``bundles`` (a file, as far as the daemon knows)."""

    kind = "list"

    def __init__(self, bundles: list[FrameBundle]) -> None:
        super().__init__(None)
        self.bundles = bundles
        self._next = 0

    def _open(self) -> None:
        self._next = 0

    def _read(self, timeout: float | None) -> FrameBundle | None:
        if self._next >= len(self.bundles):
            raise SourceEnded("list: done")
        self._next += 1
        return self.bundles[self._next - 1]

    def _close(self) -> None:
        pass
