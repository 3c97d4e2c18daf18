"""A contact sheet of what the generator renders: per species, aligned RGB, depth and IR
crops side by side (depth and IR shown as the model sees them after preprocessing)."""

from __future__ import annotations

import cv2
import numpy as np

from models.crop import crop_modalities
from models.preprocess import depth_to_unit, ir_to_unit
from models.spec import ModelSpec
from synth.scene import render_scene
from synth.species import ALL_SPECIES

TILE = 112
#: Face-relative depth half-range of FlexLive's own models (the ModelSpec default).
DEPTH_RANGE_MM = float(ModelSpec.model_fields["depth_range_mm"].default)


def contact_sheet(profile: str, seeds: int = 3, seed: int = 0) -> np.ndarray:
    """RGB uint8 image: one row per species, ``seeds`` samples of (RGB | depth | IR) each."""
    rows = []
    for species in ALL_SPECIES:
        tiles = []
        for k in range(seeds):
            s = render_scene(species, profile, seed * 1000 + k)
            rgb, depth, ir, _ = crop_modalities(s.landmarks, TILE, s.rgb, s.depth, s.ir)
            assert rgb is not None and depth is not None and ir is not None
            d = (depth_to_unit(depth, s.depth_scale, DEPTH_RANGE_MM)[0] * 255).astype(np.uint8)
            i = (ir_to_unit(ir)[0] * 255).astype(np.uint8)
            tiles += [rgb, np.dstack([d] * 3), np.dstack([i] * 3), np.zeros((TILE, 4, 3), np.uint8)]
        label = np.zeros((TILE, 120, 3), np.uint8)
        cv2.putText(
            label, species, (4, TILE // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1
        )
        rows.append(np.hstack([label, *tiles]))
    return np.vstack(rows)
