"""A rendered :class:`~synth.scene.Scene` as the sensors package's ``FrameBundle``.

The one conversion used by the synthetic camera source, the recordings writer, tests and
benchmarks. Timestamps are milliseconds, as every capture adapter gives them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sensors.bundle import MODALITIES, FrameBundle, Intrinsics


def scene_intrinsics(scene: Any) -> Intrinsics | None:
    """The scene's pinhole intrinsics (``info["intrinsics"]``: fx, fy, cx, cy) for its
    registered grid, or None when the scene carries none."""
    info = getattr(scene, "info", None) or {}
    intr = info.get("intrinsics") if isinstance(info, dict) else None
    if not isinstance(intr, list | tuple) or len(intr) != 4:
        return None
    h, w = np.asarray(scene.depth if scene.depth is not None else scene.rgb).shape[:2]
    fx, fy, cx, cy = (float(v) for v in intr)
    return Intrinsics(w, h, fx, fy, cx, cy)


def scene_to_bundle(
    scene: Any,
    index: int = 0,
    fps: float = 30.0,
    modalities: tuple[str, ...] = MODALITIES,
) -> FrameBundle:
    """Frame ``index`` of a sequence at ``fps`` (timestamp ``index·1000/fps`` ms), keeping
    only ``modalities``."""

    def get(name: str) -> np.ndarray | None:
        value = getattr(scene, name, None)
        return None if value is None or name not in modalities else np.asarray(value)

    t_ms = index * 1000.0 / fps
    bundle = FrameBundle(
        rgb=get("rgb"),
        depth=get("depth"),
        ir=get("ir"),
        depth_scale=float(getattr(scene, "depth_scale", 0.001)),
        intrinsics=scene_intrinsics(scene),
        frame_index=index,
        source=f"synth:{getattr(scene, 'profile', '?')}:{getattr(scene, 'species', '?')}",
    )
    bundle.timestamps = {m: t_ms for m in bundle.present}
    return bundle
