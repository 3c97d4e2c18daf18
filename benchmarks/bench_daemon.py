"""Daemon throughput and frame-to-decision latency on a 640×480 RGB + depth + IR recording.

What is measured: a bona fide synthetic sequence (``synth``, profile d435, 640×480)
is written to a ``.db3`` with the SDK recorder (``--unique`` rendered frames cycled to
``--frames``), then replayed through the SDK into the full daemon — capture thread,
bounded queue, face stage + bundled ONNX model, tracker, a JSONL output — and:

- *throughput mode* (the brief's figure): playback as fast as possible; processed
  frames/s = frames / (last decision − first decision); latency = time from the frame
  leaving the source to its event being written. Files are read with back-pressure, so
  this latency includes waiting in the queue behind ``queue_size`` frames.
- *camera mode* (``--real-time``): the same frames recorded at 30 fps and played at the
  recorded pace, as a camera would deliver them; latency is then the per-frame cost.

Run (from the repository root, venv active)::

    python benchmarks/bench_daemon.py --frames 300 --unique 30
    python benchmarks/bench_daemon.py --frames 300 --unique 30 --real-time

Prints one JSON object (also written to ``--out`` if given).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sensors.config import RecordingConfig, create_source  # noqa: E402
from service.daemon.config import DaemonConfig  # noqa: E402
from service.daemon.outputs import JsonlOutput, Output  # noqa: E402
from service.daemon.runner import LivenessDaemon  # noqa: E402


class Timing(Output):
    name = "timing"

    def __init__(self) -> None:
        self.done: list[float] = []
        self.latency_ms: list[float] = []
        self.analysis_ms: list[float] = []
        self.stage_ms: dict[str, list[float]] = {}
        self.faces = 0

    def frame(self, event: dict[str, Any]) -> None:
        self.done.append(time.perf_counter())
        self.latency_ms.append(event["latency_ms"])
        self.analysis_ms.append(event["analysis_ms"])
        self.faces += len(event["faces"])
        for stage, ms in event.get("timings_ms", {}).items():
            self.stage_ms.setdefault(stage, []).append(ms)

    def close(self, timeout: float) -> None:
        pass


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))], 2)


def make_recording(path: Path, frames: int, unique: int, pace: bool) -> float:
    from sensors.recorder import write_recording
    from synth import render_sequence
    from synth.bundle import scene_to_bundle

    t0 = time.perf_counter()
    scenes = render_sequence("bona_fide", "d435", unique, seed=11, fps=30)
    assert scenes[0].depth.shape == (480, 640), scenes[0].depth.shape

    def cycle() -> Any:
        for i in range(frames):
            yield scene_to_bundle(scenes[i % unique], i, 30)

    write_recording(path, cycle(), fps=30, pace=pace)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--unique", type=int, default=30, help="rendered frames, cycled")
    parser.add_argument("--real-time", action="store_true", help="camera mode (30 fps pace)")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--queue-size", type=int, default=1)
    parser.add_argument("--recording", type=Path, default=None, help="reuse/keep this .db3")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from service.daemon.analysis import build_pipeline_analyzer

    with tempfile.TemporaryDirectory() as tmp:
        recording = args.recording or Path(tmp) / "bench.db3"
        setup_s = 0.0
        if not recording.exists():
            setup_s = make_recording(recording, args.frames, args.unique, args.real_time)
        analyzer = build_pipeline_analyzer(args.model)
        timing = Timing()
        jsonl = JsonlOutput(Path(tmp) / "events.jsonl")
        daemon = LivenessDaemon(
            lambda: create_source(RecordingConfig(path=recording, real_time=args.real_time)),
            analyzer,
            [jsonl, timing],
            DaemonConfig(http_port=None, queue_size=args.queue_size),
        )
        summary = daemon.run()
        analyzer.close()
        size_mb = recording.stat().st_size / 1e6

    n = len(timing.done)
    span = timing.done[-1] - timing.done[0] if n > 1 else float("nan")
    result = {
        "mode": "camera (real time, 30 fps)" if args.real_time else "as fast as possible",
        "frames": n,
        "frames_dropped": summary.frames_dropped,
        "processed_fps": round((n - 1) / span, 1) if n > 1 else None,
        "latency_ms": {
            "p50": pct(timing.latency_ms, 50),
            "p95": pct(timing.latency_ms, 95),
            "max": round(max(timing.latency_ms), 2),
        },
        "analysis_ms": {
            "p50": pct(timing.analysis_ms, 50),
            "p95": pct(timing.analysis_ms, 95),
            "mean": round(statistics.fmean(timing.analysis_ms), 2),
        },
        "pipeline_stage_ms_p50": {k: pct(v, 50) for k, v in timing.stage_ms.items()},
        "faces_per_frame": round(timing.faces / max(1, n), 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "final_decisions": summary.final_decisions,
        "queue_size": args.queue_size,
        "recording_mb": round(size_mb, 1),
        "setup_s": round(setup_s, 1),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
