"""RealSense recordings of synthetic sequences, written through pyrealsense2's software
device by the sensors package's recorder (``sensors.recorder.write_recording``)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from models.synth.scene import Scene, render_sequence
from sensors.bundle import FrameBundle, Intrinsics

log = logging.getLogger(__name__)

#: What a recordings set contains: one live and one attack of each family.
RECORDED_SPECIES = ("bona_fide", "print_flat", "replay_tablet", "mask_rigid")


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


def scene_to_bundle(scene: Scene, index: int, fps: float) -> FrameBundle:
    t = index / fps
    intrinsics = scene_intrinsics(scene)
    assert intrinsics is not None, "a rendered scene carries its intrinsics"
    return FrameBundle(
        intrinsics=intrinsics,
        rgb=scene.rgb,
        depth=scene.depth,
        ir=scene.ir,
        depth_scale=scene.depth_scale,
        timestamps={"rgb": t, "depth": t, "ir": t},
        frame_index=index,
        source=f"synth:{scene.profile}:{scene.species}",
    )


def write_recordings(
    out: Path,
    profile: str = "d435",
    n_frames: int = 30,
    seed: int = 0,
    fps: int = 30,
    species: tuple[str, ...] = RECORDED_SPECIES,
) -> list[Path]:
    """One ``.db3`` per species plus ``recordings.json`` with per-frame ground truth."""
    try:
        from sensors.recorder import write_recording
    except ImportError as exc:  # the sensors package owns the recorder
        raise RuntimeError(
            f"RealSense recording needs sensors.recorder.write_recording and pyrealsense2 ({exc})"
        ) from exc
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    truth: dict[str, object] = {}
    for k, sp in enumerate(species):
        frames = render_sequence(sp, profile, n_frames, seed * 1000 + k, fps=fps)
        bundles = [scene_to_bundle(s, i, fps) for i, s in enumerate(frames)]
        path = out / f"{profile}_{sp}.db3"
        write_recording(path, bundles, fps)
        paths.append(path)
        truth[path.name] = {
            "species": sp,
            "label": int(sp == "bona_fide"),
            "profile": profile,
            "fps": fps,
            "boxes": [[round(float(v), 2) for v in s.box] for s in frames],
            "landmarks": [[[round(float(v), 2) for v in p] for p in s.landmarks] for s in frames],
        }
        log.info("wrote %s (%d frames)", path, n_frames)
    (out / "recordings.json").write_text(json.dumps(truth, indent=1) + "\n")
    return paths
