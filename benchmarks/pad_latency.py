"""Batch-1 onnxruntime latency of a FlexLive model on N CPU threads (model only, no face stage).

python benchmarks/pad_latency.py --model models/default/flexlive-lite.onnx --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.ort_session import inference_session, session_options  # noqa: E402


def measure(model: str, threads: int = 2, runs: int = 500, warmup: int = 50) -> dict[str, float]:
    sess = inference_session(model, session_options(threads))
    feed = {}
    rng = np.random.default_rng(0)
    for i in sess.get_inputs():
        shape = [1 if not isinstance(d, int) else d for d in i.shape]
        feed[i.name] = rng.standard_normal(shape).astype(np.float32)
    feed["present"] = np.ones((1, 3), np.float32)
    for _ in range(warmup):
        sess.run(None, feed)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, feed)
        times.append(time.perf_counter() - t)
    ms = np.asarray(times) * 1000
    return {
        "threads": threads,
        "median_ms": round(float(np.median(ms)), 3),
        "p90_ms": round(float(np.percentile(ms, 90)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "runs": runs,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="models/default/flexlive-lite.onnx")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=500)
    a = ap.parse_args()
    print(json.dumps(measure(a.model, a.threads, a.runs)))


if __name__ == "__main__":
    main()
