"""Milliseconds the RGB expert adds per face: its crops from the frame plus its
MiniFASNet networks on ONNX Runtime, batch 1 (one face), on N intra-op threads — for each
choice of networks (V2 alone, the default; V2 + V1SE, the publisher's pair), measured
interleaved in one run so their ratio holds on a noisy machine.

python benchmarks/rgb_expert_latency.py [--threads 1 2] [--networks v2 v2+v1se] [--runs 500]

``--pipeline`` measures instead what the expert adds to a whole request in process (the
service runs it beside the flexible-modal model): the same frame through the service's
pipeline with the expert on and off, interleaved — a colour-only phone photo and a
synthetic RGB+D+IR frame.
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

from service.rgb_expert import RgbExpert, parse_networks  # noqa: E402

FRAME = Path(__file__).resolve().parents[1] / "tests/fixtures/minifasnet_samples/live_T1.jpg"
#: The MTCNN box FlexLive finds on that frame (x1, y1, x2, y2), rounded.
BOX = np.array([158.0, 196.0, 312.0, 395.0])


def measure(
    threads: int, choices: list[str], runs: int = 500, warmup: int = 50
) -> list[dict[str, object]]:
    experts = [
        RgbExpert.load(intra_op_threads=threads, networks=parse_networks(c)) for c in choices
    ]
    rgb = cv2.cvtColor(cv2.imread(str(FRAME)), cv2.COLOR_BGR2RGB)
    for expert in experts:
        for _ in range(warmup):
            expert.score(rgb, [BOX])
    times: list[list[float]] = [[] for _ in experts]
    for _ in range(runs):
        for k, expert in enumerate(experts):
            t = time.perf_counter()
            expert.score(rgb, [BOX])
            times[k].append(time.perf_counter() - t)
    out: list[dict[str, object]] = []
    for expert, ts in zip(experts, times, strict=True):
        ms = np.asarray(ts) * 1000
        out.append(
            {
                "networks": expert.version,
                "threads": threads,
                "median_ms": round(float(np.median(ms)), 3),
                "p90_ms": round(float(np.percentile(ms, 90)), 3),
                "runs": runs,
            }
        )
    return out


def pipeline_added(runs: int = 300, warmup: int = 30) -> list[dict[str, object]]:
    """Request time in process with the expert on vs off, per frame (one face)."""
    from harness import frame_files

    from service.oneshot import LocalScorer
    from service.settings import Settings

    scorers = {on: LocalScorer(Settings(max_faces=1, rgb_expert=on)) for on in (True, False)}
    for scorer in scorers.values():
        scorer.warmup()
    frames = {
        "phone photo, RGB (live_T1.jpg)": {"rgb": FRAME.read_bytes()},
        "synthetic 640×480, RGB+D+IR": frame_files()[0],
    }
    out: list[dict[str, object]] = []
    for label, files in frames.items():
        times: dict[bool, list[float]] = {True: [], False: []}
        for i in range(warmup + runs):
            for on, scorer in scorers.items():
                t = time.perf_counter()
                body = scorer.score(files)
                if i >= warmup:
                    times[on].append((time.perf_counter() - t) * 1e3)
                assert len(body.faces) == 1, body
                assert (body.faces[0].scores or {}).get("rgb_expert") is not None or not on
        on_ms, off_ms = (float(np.median(times[k])) for k in (True, False))
        out.append(
            {
                "frame": label,
                "expert_on_median_ms": round(on_ms, 2),
                "expert_off_median_ms": round(off_ms, 2),
                "added_ms": round(on_ms - off_ms, 2),
                "runs": runs,
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--networks", nargs="+", default=["v2", "v2+v1se"])
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--pipeline", action="store_true", help="added ms per request, on vs off")
    args = ap.parse_args()
    if args.pipeline:
        for row in pipeline_added(args.runs):
            print(json.dumps(row))
        return
    for t in args.threads:
        for row in measure(t, args.networks, args.runs):
            print(json.dumps(row))


if __name__ == "__main__":
    main()
