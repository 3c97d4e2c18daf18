"""Milliseconds the RGB expert adds per face: its two crops from the frame plus both
MiniFASNet networks on ONNX Runtime, batch 1 (one face), on N intra-op threads.

python benchmarks/rgb_expert_latency.py [--threads 1 2] [--runs 500]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.rgb_expert import RgbExpert  # noqa: E402

FRAME = Path(__file__).resolve().parents[1] / "tests/fixtures/minifasnet_samples/live_T1.jpg"
#: The MTCNN box FlexLive finds on that frame (x1, y1, x2, y2), rounded.
BOX = np.array([158.0, 196.0, 312.0, 395.0])


def measure(threads: int, runs: int = 500, warmup: int = 50) -> dict[str, float]:
    expert = RgbExpert.load(intra_op_threads=threads)
    rgb = cv2.cvtColor(cv2.imread(str(FRAME)), cv2.COLOR_BGR2RGB)
    for _ in range(warmup):
        expert.score(rgb, [BOX])
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        expert.score(rgb, [BOX])
        times.append(time.perf_counter() - t)
    ms = np.asarray(times) * 1000
    return {
        "threads": threads,
        "median_ms": round(float(np.median(ms)), 3),
        "p90_ms": round(float(np.percentile(ms, 90)), 3),
        "runs": runs,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--runs", type=int, default=500)
    args = ap.parse_args()
    for t in args.threads:
        print(json.dumps(measure(t, args.runs)))


if __name__ == "__main__":
    main()
