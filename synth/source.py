"""A synthetic multi-sensor camera: ``synth`` scenes played as a looping stream.

The adapter for the ``synthetic`` source type (``sensors.config.SyntheticConfig``); it lives
here, not in ``sensors``, so that capture never imports the generator.

Useful to demo and soak-test the daemon without hardware. The sequence is rendered once
(``render_sequence(species, profile, n_frames, seed, fps)``) and replayed, paced at
``fps`` like a camera unless ``real_time`` is off.
"""

from __future__ import annotations

import logging
import time

from sensors.base import FrameSource, SourceEnded, SourceError
from sensors.bundle import FrameBundle
from sensors.config import SyntheticConfig
from synth.bundle import scene_to_bundle

log = logging.getLogger(__name__)


class SyntheticSource(FrameSource):
    kind = "synthetic"

    def __init__(self, config: SyntheticConfig) -> None:
        super().__init__(config)
        self.config: SyntheticConfig = config
        self._bundles: list[FrameBundle] = []
        self._position = 0
        self._next_t = 0.0

    @property
    def live(self) -> bool:  # type: ignore[override]
        return self.config.real_time

    @property
    def description(self) -> str:
        return f"synthetic:{self.config.profile}/{self.config.species}"

    def _open(self) -> None:
        from synth.scene import render_sequence

        c = self.config
        # Rendering takes about 0.1-0.3 s a frame: say so, or the daemon looks stuck.
        log.info(
            "%s: rendering %d frames before the first one is delivered",
            self.description,
            c.n_frames,
        )
        t0 = time.perf_counter()
        try:
            scenes = render_sequence(c.species, c.profile, c.n_frames, c.seed, fps=c.fps)
        except (KeyError, ValueError) as exc:
            raise SourceError(f"{self.description}: cannot render: {exc}") from exc
        self._bundles = [scene_to_bundle(s, i, c.fps, c.modalities) for i, s in enumerate(scenes)]
        if not self._bundles:
            raise SourceError(f"{self.description}: rendered no frames")
        log.info(
            "%s: %d frames rendered in %.1f s; streaming",
            self.description,
            len(self._bundles),
            time.perf_counter() - t0,
        )
        self._position = 0
        self._next_t = time.monotonic()

    def _read(self, timeout: float | None) -> FrameBundle | None:
        c = self.config
        if self._position >= len(self._bundles):
            if not c.loop:
                raise SourceEnded(f"{self.description}: end of sequence")
            self._position = 0
        if c.real_time:
            delay = self._next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._next_t = max(self._next_t + 1.0 / c.fps, time.monotonic() - 1.0 / c.fps)
        template = self._bundles[self._position]
        self._position += 1
        return FrameBundle(
            rgb=template.rgb,
            depth=template.depth,
            ir=template.ir,
            depth_scale=template.depth_scale,
            timestamps={m: time.time() * 1000.0 for m in template.present},
            intrinsics=template.intrinsics,
        )

    def _close(self) -> None:
        self._bundles = []
