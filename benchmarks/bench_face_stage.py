"""Face-stage latency: detection + alignment + quality + preprocessing of one frame.

Measures what serving does before the model runs, on a 640×480 RGB+Depth+IR frame with
one real face (the Grace Hopper portrait from matplotlib, pasted at ~150 px over
scikit-image's coffee.png photograph, with a synthetic registered depth map and IR
image), and prints median/p95 per step over N runs.

Thread settings matter on a small host: the ORT session of the detector gets
``--threads`` intra-op threads (FaceStageConfig.detector_threads), OpenCV gets
``--cv-threads`` (cv2.setNumThreads), and OPENBLAS/OMP/MKL are pinned to 1 before numpy
is imported (set them yourself to override). Reproduce the figure in docs/face-stage.md::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_face_stage.py --runs 300

``total`` is wall time; ``total_cpu`` is this process's CPU time for the same work (with
one detector thread it is the single-core cost, free of the waiting that other processes
on a shared host add). Options: ``--scene synth`` uses synth's rendered D435 scene
instead of the portrait; ``--min-face-px``, ``--input-size`` and ``--detector`` vary the
configuration.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.preprocess import preprocess  # noqa: E402
from models.spec import PreprocessSpec  # noqa: E402
from sensors.bundle import FrameBundle  # noqa: E402
from service.face.config import FaceStageConfig  # noqa: E402
from service.face.stage import FaceStage  # noqa: E402

log = logging.getLogger("bench_face_stage")
H, W = 480, 640


def portrait_frame(face_px: int = 150) -> FrameBundle:
    """A 640×480 RGB-D-IR bundle with one real face and a head-shaped depth blob."""
    import matplotlib

    path = Path(matplotlib.__file__).parent / "mpl-data/sample_data/grace_hopper.jpg"
    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    s = face_px / 180.0  # the face is ~180 px wide in the 512×600 original
    img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(0)
    # A real photograph as the background (scikit-image's coffee.png): textured, no face.
    import skimage

    bg = cv2.imread(str(Path(skimage.__file__).parent / "data/coffee.png"))
    rgb = cv2.resize(cv2.cvtColor(bg, cv2.COLOR_BGR2RGB), (W, H), interpolation=cv2.INTER_AREA)
    y0, x0 = 60, 200
    h, w = min(img.shape[0], H - y0), min(img.shape[1], W - x0)
    rgb[y0 : y0 + h, x0 : x0 + w] = img[:h, :w]
    # Depth of a person at ~0.55 m before a wall at 1.8 m: an ellipsoid head around the
    # portrait's face (centre at (265, 205) in the 512×600 original) and a torso below it.
    yy, xx = np.mgrid[0:H, 0:W]
    depth = np.full((H, W), 1800, np.float64)
    cx, cy = x0 + 265 * s, y0 + 205 * s
    ax, ay = 0.55 * face_px, 0.75 * face_px
    r2 = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2
    depth[r2 < 1] = 560 - 60 * np.sqrt(1 - r2[r2 < 1])
    torso = (yy > cy + 0.9 * ay) & (np.abs(xx - cx) < 1.6 * face_px)
    depth[torso] = 650
    depth = depth + rng.normal(0, 2, depth.shape)
    depth[rng.random(depth.shape) < 0.02] = 0  # sensor holes
    ir = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return FrameBundle(rgb=rgb, depth=depth.astype(np.uint16), ir=ir, depth_scale=0.001)


def synth_frame(seed: int = 0) -> FrameBundle:
    from synth import render_scene

    sc = render_scene("bona_fide", "d435", seed)
    return FrameBundle(rgb=sc.rgb, depth=sc.depth, ir=sc.ir, depth_scale=sc.depth_scale)


def spec_for(input_size: int) -> PreprocessSpec:
    return PreprocessSpec(input_size=input_size)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="detector ORT intra-op threads")
    ap.add_argument("--cv-threads", type=int, default=1, help="cv2.setNumThreads")
    ap.add_argument("--min-face-px", type=int, default=FaceStageConfig().min_face_px)
    ap.add_argument("--input-size", type=int, default=112)
    ap.add_argument("--detector", default="auto", choices=["auto", "mtcnn", "depth"])
    ap.add_argument("--scene", default="portrait", choices=["portrait", "synth"])
    ap.add_argument("--json", type=Path, help="also write the summary here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cv2.setNumThreads(args.cv_threads)

    cfg = FaceStageConfig(
        detector=args.detector, min_face_px=args.min_face_px, detector_threads=args.threads
    )
    stage = FaceStage(cfg, args.input_size)
    stage.warmup()
    spec = spec_for(args.input_size)
    bundle = portrait_frame() if args.scene == "portrait" else synth_frame()

    steps: dict[str, list[float]] = {}
    faces = 0
    for i in range(args.warmup + args.runs):
        c0 = time.process_time()
        t0 = time.perf_counter()
        res = stage.process(bundle)
        t1 = time.perf_counter()
        for face in res.faces:
            preprocess(face.crops, spec)
        t2 = time.perf_counter()
        c2 = time.process_time()
        if i < args.warmup:
            continue
        faces = len(res.faces)
        for k, v in res.timings_ms.items():
            steps.setdefault(k, []).append(v)
        steps.setdefault("preprocess", []).append((t2 - t1) * 1000)
        steps.setdefault("total", []).append((t2 - t0) * 1000)
        # CPU time of this process (all its threads): what the stage costs, without the
        # waiting that other processes on a shared host add to the wall time.
        steps.setdefault("total_cpu", []).append((c2 - c0) * 1000)

    summary = {
        k: {"p50": pct(v, 50), "p95": pct(v, 95), "min": float(np.min(v))} for k, v in steps.items()
    }
    log.info(
        "face stage, %dx%d %s, %d face(s), %s, min_face_px=%d, input %d, ORT threads %d, "
        "cv2 threads %d, %d runs; load average %.2f (other processes inflate the figures)",
        W,
        H,
        "+".join(bundle.present),
        faces,
        res.detector,
        args.min_face_px,
        args.input_size,
        args.threads,
        args.cv_threads,
        args.runs,
        os.getloadavg()[0],
    )
    for k, v in summary.items():
        log.info(
            "  %-10s p50 %7.2f ms   p95 %7.2f ms   min %7.2f ms", k, v["p50"], v["p95"], v["min"]
        )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
