"""Which part of a held-out real photograph's aligned colour crop drives the model's score.

The photograph goes through the face stage as a full frame (RGB, or RGB with the live depth
and NIR that ``synth.realcheck`` renders for it); then each ``--patch``-pixel square of the
aligned RGB crop in turn is replaced by the crop's mean colour (depth and IR untouched) and
the flexible-modal model scores it again. Printed: the base score and, per patch, the score
change (positive: that patch pushed the score towards spoof).

    python benchmarks/real_photo_occlusion.py astronaut [--rgb-only] [--patch 16]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import DEFAULT_MODEL_PATH  # noqa: E402
from sensors.bundle import FrameBundle  # noqa: E402
from service.engine import InferenceEngine  # noqa: E402
from service.pipeline import build_face_stage  # noqa: E402
from service.settings import Settings  # noqa: E402
from synth.realcheck import holdout_photos, live_depth_ir  # noqa: E402


def occlusion(
    name: str, model: Path, patch: int = 16, rgb_only: bool = False
) -> tuple[float, np.ndarray]:
    photos = {p.name: p for p in holdout_photos()}
    if name not in photos:
        raise SystemExit(f"no held-out photograph '{name}'; choose from {sorted(photos)}")
    photo = photos[name]
    engine = InferenceEngine.load(model, providers="cpu", intra_op_threads=1)
    stage = build_face_stage(Settings().face, engine.spec.input_size)
    if rgb_only:
        bundle = FrameBundle(rgb=photo.rgb)
    else:
        depth, ir = live_depth_ir(photo)
        bundle = FrameBundle(rgb=photo.rgb, depth=depth, ir=ir, depth_scale=0.001)
    staged = stage.process(bundle, max_faces=1)
    if not staged.faces:
        raise SystemExit(f"no face found in '{name}'")
    crops = staged.faces[0].crops
    assert crops.rgb is not None
    base = engine.score([crops])[0]
    if isinstance(base, Exception):
        raise SystemExit(f"not scored: {base}")
    side = crops.rgb.shape[0]
    n = -(-side // patch)
    heat = np.zeros((n, n))
    mean = crops.rgb.reshape(-1, 3).mean(0).astype(np.uint8)
    for i in range(n):
        for j in range(n):
            rgb = crops.rgb.copy()
            rgb[i * patch : (i + 1) * patch, j * patch : (j + 1) * patch] = mean
            scored = engine.score([replace(crops, rgb=rgb)])[0]
            if isinstance(scored, Exception):
                raise SystemExit(f"not scored: {scored}")
            heat[i, j] = scored.score - base.score
    return base.score, heat


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("photo", help="held-out photograph id (synth/assets/faces.csv, 'holdout')")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    ap.add_argument("--patch", type=int, default=16)
    ap.add_argument("--rgb-only", action="store_true")
    args = ap.parse_args()
    base, heat = occlusion(args.photo, args.model, args.patch, args.rgb_only)
    print(
        f"{args.photo}: score {base:.3f}; score change with each patch occluded (rows top→bottom):"
    )
    for row in heat:
        print(" ".join(f"{v:+.2f}" for v in row))
    i, j = np.unravel_index(int(np.argmax(heat)), heat.shape)
    print(f"largest rise {heat[i, j]:+.2f} at row {i}, column {j} of {heat.shape[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
