"""RealSense recordings of synthetic sequences, written through pyrealsense2's software
device by the sensors package's recorder (``sensors.recorder.write_recording``)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from synth.bundle import scene_to_bundle
from synth.scene import render_sequence

log = logging.getLogger(__name__)

#: What a recordings set contains: one live and one attack of each family.
RECORDED_SPECIES = ("bona_fide", "print_flat", "replay_tablet", "mask_rigid")


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
