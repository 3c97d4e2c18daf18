"""One latency harness for the whole serving path, with the RGB-only reference beside it.

On one 640×480 RGB + depth + IR frame (a rendered bona fide scene, sent as a client would:
JPEG colour, 16-bit PNG depth, 8-bit PNG IR) it measures, in one process and one run:

- **in-process stages**: decode per modality, face stage (health, detection, alignment,
  quality), preprocessing, the flexible-modal model, the RGB expert, fusion + decision +
  response encoding, and the whole in-process request (``service.oneshot.LocalScorer``:
  the route's own decoder, pipeline and response schema);
- **the reference RGB-only pipeline** the way the open peer runs it: decode the colour JPEG,
  detect (FlexLive's MTCNN stands in for the peer's RetinaFace), then MiniFASNet V2 and
  V1SE one after the other at batch 1 — interleaved with FlexLive's request, so the ratio
  holds on a noisy machine;
- **over HTTP** (``liveness serve`` in a subprocess on a free port): full-frame RGB+D+IR
  requests at concurrency 1, 4 and 8 (median, p95, requests/s), against the in-process
  request from two threads (the throughput an HTTP server could reach on the same cores);
- **model only**: the bundled ONNX model at batch 1, 8 and 32 (ms per batch, faces/s).

Writes JSON and a Markdown table (with the machine and the command) when ``--out`` is
given. The camera daemon has its own harness (``benchmarks/bench_daemon.py``, it needs
pyrealsense2 to write a recording).

    .venv/bin/python benchmarks/harness.py [--runs 200] [--http-runs 100] [--no-http] \
        [--out docs/benchmarks/harness]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models import DEFAULT_MODEL_PATH  # noqa: E402
from models.preprocess import preprocess  # noqa: E402
from sensors.bundle import FrameBundle  # noqa: E402


def stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms, dtype=np.float64)
    return {
        "p50_ms": round(float(np.median(a)), 3),
        "p95_ms": round(float(np.percentile(a, 95)), 3),
        "n": len(ms),
    }


def frame_files(seed: int = 0) -> tuple[dict[str, bytes], FrameBundle]:
    """The frame as a client sends it, and as arrays."""
    from synth import render_scene
    from synth.bundle import scene_to_bundle

    bundle = scene_to_bundle(render_scene("bona_fide", "d435", seed, split="test"))
    assert bundle.rgb is not None and bundle.depth is not None and bundle.ir is not None
    files = {
        "rgb": cv2.imencode(".jpg", bundle.rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])[1],
        "depth": cv2.imencode(".png", bundle.depth)[1],
        "ir": cv2.imencode(".png", bundle.ir)[1],
    }
    return {k: v.tobytes() for k, v in files.items()}, bundle


def machine() -> dict[str, Any]:
    import onnxruntime as ort

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "opencv": cv2.__version__,
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }


class Stages:
    """The service's pieces, built as the app builds them, timed one by one."""

    def __init__(self, model: Path) -> None:
        from service.oneshot import LocalScorer
        from service.settings import Settings

        self.settings = Settings(model_path=model, max_faces=1)
        self.scorer = LocalScorer(self.settings)
        self.pipeline = self.scorer.pipeline
        self.pipeline.warmup()

    def breakdown(self, files: dict[str, bytes]) -> dict[str, float]:
        from service.api.decoding import build_bundle, decode_array, to_modality
        from service.api.schemas import LivenessResponse

        p = self.pipeline
        out: dict[str, float] = {}
        arrays = {}
        for m, data in files.items():
            t = time.perf_counter()
            arr, kind = decode_array(m, data, max_pixels=self.settings.max_image_pixels)
            arrays[m] = to_modality(m, arr, kind)
            out[f"decode_{m}"] = (time.perf_counter() - t) * 1e3
        t = time.perf_counter()
        build_bundle(files, depth_scale=0.001, max_pixels=self.settings.max_image_pixels)
        out["decode_frame"] = (time.perf_counter() - t) * 1e3  # side by side, as served
        bundle = FrameBundle(depth_scale=0.001, **arrays).validate()
        staged = p.face_stage.process(bundle, max_faces=1)
        for k, v in staged.timings_ms.items():
            out[f"face_{k}"] = float(v)
        face = staged.faces[0]
        t = time.perf_counter()
        preprocess(face.crops, p.engine.spec)
        out["preprocess"] = (time.perf_counter() - t) * 1e3
        t = time.perf_counter()
        p.engine.score([face.crops])
        out["flexmodal_with_preprocess"] = (time.perf_counter() - t) * 1e3
        if p.expert is not None and bundle.rgb is not None:
            t = time.perf_counter()
            p.expert.score(bundle.rgb, [face.detection.box])
            out["rgb_expert"] = (time.perf_counter() - t) * 1e3
        analysis = p.analyze(bundle, cropped=False)
        t = time.perf_counter()
        LivenessResponse.from_analysis(analysis, request_id="bench").model_dump_json()
        out["response_encoding"] = (time.perf_counter() - t) * 1e3
        return out

    def request(self, files: dict[str, bytes]) -> float:
        t = time.perf_counter()
        body = self.scorer.score(files)
        body.model_dump_json()
        elapsed = (time.perf_counter() - t) * 1e3
        assert body.faces, body
        return elapsed


class Reference:
    """The open RGB-only pipeline: JPEG decode → detector → MiniFASNet V2 → V1SE, batch 1."""

    def __init__(self) -> None:
        from service.face.config import FaceStageConfig
        from service.face.detectors.base import create_detector
        from service.rgb_expert import RgbExpert

        self.detector = create_detector("mtcnn", FaceStageConfig())
        self.expert = RgbExpert.load(networks=("v2", "v1se"))
        self.expert.warmup()

    def request(self, jpeg: bytes) -> float:
        t = time.perf_counter()
        bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        dets = self.detector.detect(rgb, max_faces=1)
        assert dets, "the reference detector found no face"
        self.expert.score(rgb, [dets[0].box])
        return (time.perf_counter() - t) * 1e3


def interleaved(
    fns: dict[str, Callable[[], float]], runs: int, warmup: int = 10
) -> dict[str, list[float]]:
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(runs):
        for k, fn in fns.items():
            out[k].append(fn())
    return out


class RefusedError(Exception):
    """A request answered with something other than 200 (e.g. 503 when overloaded)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def threads_throughput(fn: Callable[[], float], threads: int, per_thread: int) -> dict[str, Any]:
    """``threads`` callers, ``per_thread`` requests each: latency of the answered ones,
    answered requests per second, and the refusals by status."""
    lat: list[float] = []
    refused: dict[str, int] = {}
    lock = threading.Lock()

    def work() -> None:
        mine, no = [], []
        for _ in range(per_thread):
            try:
                mine.append(fn())
            except RefusedError as exc:
                no.append(str(exc.status))
        with lock:
            lat.extend(mine)
            for status in no:
                refused[status] = refused.get(status, 0) + 1

    t = time.perf_counter()
    pool = [threading.Thread(target=work) for _ in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    wall = time.perf_counter() - t
    return {
        **(stats(lat) if lat else {"n": 0}),
        "requests_per_s": round(len(lat) / wall, 2),
        "concurrency": threads,
        "refused": refused,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def multipart_body(files: dict[str, bytes]) -> tuple[bytes, str]:
    """The frame as one ``multipart/form-data`` body (httpx encodes it), built once: the
    load generator then costs the shared cores what ``wrk`` would, a send and a read per
    request. Returns the body and its Content-Type."""
    import httpx

    upload = {k: (f"{k}.{'jpg' if k == 'rgb' else 'png'}", v) for k, v in files.items()}
    req = httpx.Request(
        "POST", "http://bench/liveness", files=upload, data={"depth_scale": "0.001"}
    )
    return req.read(), req.headers["Content-Type"]


@contextmanager
def served(model: Path, files: dict[str, bytes], workers: int = 1) -> Iterator[Callable[[], float]]:
    """``liveness serve`` (``workers`` processes) in a subprocess on a free port (the
    ``LIVENESS_*`` variables of this process apply); yields one request's round trip in ms
    (one keep-alive connection per client thread)."""
    port = _free_port()
    env = {**os.environ, "LIVENESS_LOG_LEVEL": "WARNING", "LIVENESS_MAX_FACES": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--model", str(model),
         "--workers", str(workers)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    body, content_type = multipart_body(files)
    local = threading.local()

    def one() -> float:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        t = time.perf_counter()
        conn.request("POST", "/liveness", body=body, headers={"Content-Type": content_type})
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise RefusedError(r.status)
        return (time.perf_counter() - t) * 1e3

    try:
        for _ in range(600):
            ready = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                ready.request("GET", "/readyz")
                if ready.getresponse().status == 200:
                    break
            except OSError:
                pass
            finally:
                ready.close()
            if proc.poll() is not None:
                assert proc.stderr is not None
                raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-500:]}")
            time.sleep(0.1)
        for _ in range(10):
            one()
        yield one
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def server_settings() -> dict[str, str]:
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith("LIVENESS_")}


def model_only(model: Path, runs: int) -> dict[str, Any]:
    from service.engine import InferenceEngine

    engine = InferenceEngine.load(model, providers="cpu", intra_op_threads=2)
    engine.warmup()
    rng = np.random.default_rng(0)
    s = engine.spec.input_size
    from models.preprocess import FaceCrops

    crops = FaceCrops(
        rgb=rng.integers(0, 255, (s, s, 3), dtype=np.uint8),
        depth=rng.integers(500, 600, (s, s), dtype=np.uint16),
        ir=rng.integers(0, 255, (s, s), dtype=np.uint8),
    )
    out: dict[str, Any] = {}
    for batch in (1, 8, 32):
        items = [crops] * batch
        for _ in range(5):
            engine.score(items)
        ms = []
        for _ in range(max(10, runs // batch)):
            t = time.perf_counter()
            engine.score(items)
            ms.append((time.perf_counter() - t) * 1e3)
        st = stats(ms)
        out[f"batch{batch}"] = {**st, "faces_per_s": round(batch * 1e3 / st["p50_ms"], 1)}
    return out


def markdown(result: dict[str, Any], command: str) -> str:
    m = result["machine"]
    lines = [
        "# FlexLive latency harness",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, load average {m['load_average_1m']} "
        f"(1 min, at the start); Python {m['python']}, ONNX Runtime {m['onnxruntime']}, "
        f"OpenCV {m['opencv']}; {m['date_utc']} UTC. Model: {result['model']}.",
        "",
        f"Command: `{command}`",
        "",
        "## One full frame (640×480 RGB JPEG + depth PNG + IR PNG), in process",
        "",
        "| stage | p50 ms | p95 ms |",
        "| --- | --- | --- |",
    ]
    for k, v in result["stages"].items():
        lines.append(f"| {k} | {v['p50_ms']:.2f} | {v['p95_ms']:.2f} |")
    side = result["side_by_side"]
    lines += [
        "",
        "## Side by side (interleaved in one run)",
        "",
        "| pipeline | p50 ms | p95 ms |",
        "| --- | --- | --- |",
        f"| FlexLive request, RGB+D+IR (decode, face stage, model, RGB expert, response) "
        f"| {side['flexlive']['p50_ms']:.2f} | {side['flexlive']['p95_ms']:.2f} |",
        f"| reference RGB-only (decode, detector, MiniFASNet V2 then V1SE) "
        f"| {side['reference_rgb']['p50_ms']:.2f} | {side['reference_rgb']['p95_ms']:.2f} |",
        "",
        f"Ratio FlexLive / reference (p50): **{side['ratio_p50']:.2f}**.",
    ]
    if "http" in result:
        lines += [
            "",
            "## Over HTTP (`liveness serve`, full frame RGB+D+IR)",
            "",
            "| concurrency | p50 ms | p95 ms | answered requests/s | refused |",
            "| --- | --- | --- | --- | --- |",
        ]
        for v in result["http"].values():
            no = ", ".join(f"{n}× {k}" for k, n in v["refused"].items()) or "none"
            lines.append(
                f"| {v['concurrency']} | {v.get('p50_ms', 0):.2f} | {v.get('p95_ms', 0):.2f} "
                f"| {v['requests_per_s']:.1f} | {no} |"
            )
        lines += [
            "",
            "Throughput, in process from two threads vs HTTP at concurrency 8, alternated "
            "(requests/s):",
            "",
            "| round | in process, 2 threads | HTTP, c8 | ratio |",
            "| --- | --- | --- | --- |",
        ]
        for i, r in enumerate(result["throughput_rounds"], 1):
            lines.append(
                f"| {i} | {r['in_process_2_threads']:.1f} | {r['http_c8']:.1f} | {r['ratio']:.2f} |"
            )
        settings = ", ".join(f"`{k}={v}`" for k, v in result["server_settings"].items())
        lines += [
            "",
            f"Medians: in process {result['in_process_2_threads']['requests_per_s']:.1f}, "
            f"HTTP {result['http_c8_requests_per_s']:.1f} requests/s: HTTP at concurrency 8 "
            f"reaches **{result['http_vs_in_process']:.2f}×** the in-process pipeline. "
            f"Server: {result['server_workers']} worker process(es), "
            f"settings {settings or 'defaults'}.",
        ]
    lines += [
        "",
        "## Model only (flexible-modal ONNX, RGB+D+IR, 2 intra-op threads)",
        "",
        "| batch | p50 ms | p95 ms | faces/s |",
        "| --- | --- | --- | --- |",
    ]
    for k, v in result["model_only"].items():
        lines.append(
            f"| {k.removeprefix('batch')} | {v['p50_ms']:.2f} | {v['p95_ms']:.2f} "
            f"| {v['faces_per_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def over_http(
    model: Path,
    files: dict[str, bytes],
    stages: Stages,
    http_runs: int,
    rounds: int,
    workers: int = 1,
) -> dict[str, Any]:
    """Latency at concurrency 1, 4 and 8, then ``rounds`` alternations of the in-process
    request from two threads and HTTP at concurrency 8 (so a slow spell of the machine hits
    both sides); the throughput ratio is the ratio of the two medians."""
    out: dict[str, Any] = {"server_settings": server_settings(), "server_workers": workers}
    with served(model, files, workers) as one:
        out["http"] = {
            f"c{c}": threads_throughput(one, c, max(1, http_runs // c)) for c in (1, 4, 8)
        }
        rows = []
        for _ in range(rounds):
            ip = threads_throughput(lambda: stages.request(files), 2, max(1, http_runs // 2))
            hp = threads_throughput(one, 8, max(1, http_runs // 8))
            rows.append(
                {
                    "in_process_2_threads": ip["requests_per_s"],
                    "http_c8": hp["requests_per_s"],
                    "ratio": round(hp["requests_per_s"] / ip["requests_per_s"], 3),
                }
            )
    ip_med = float(np.median([r["in_process_2_threads"] for r in rows]))
    hp_med = float(np.median([r["http_c8"] for r in rows]))
    out["throughput_rounds"] = rows
    out["in_process_2_threads"] = {"requests_per_s": round(ip_med, 2)}
    out["http_c8_requests_per_s"] = round(hp_med, 2)
    out["http_vs_in_process"] = round(hp_med / ip_med, 3)
    return out


def run(
    model: Path, runs: int, http_runs: int, with_http: bool, rounds: int = 5, workers: int = 1
) -> dict[str, Any]:
    files, _ = frame_files()
    result: dict[str, Any] = {"machine": machine()}
    stages = Stages(model)
    info = stages.pipeline.engine.info
    expert = stages.pipeline.expert
    result["model"] = f"{info.name} {info.version}" + (
        f" + RGB expert {expert.version}" if expert is not None else ""
    )
    per: dict[str, list[float]] = {}
    for _ in range(10):
        stages.breakdown(files)
    for _ in range(runs):
        for k, v in stages.breakdown(files).items():
            per.setdefault(k, []).append(v)
    ref = Reference()
    pair: dict[str, Callable[[], float]] = {
        "flexlive": lambda: stages.request(files),
        "reference_rgb": lambda: ref.request(files["rgb"]),
    }
    side = interleaved(pair, runs)
    per["request_in_process"] = side["flexlive"]
    result["stages"] = {k: stats(v) for k, v in per.items()}
    s_f, s_r = stats(side["flexlive"]), stats(side["reference_rgb"])
    result["side_by_side"] = {
        "flexlive": s_f,
        "reference_rgb": s_r,
        "ratio_p50": round(s_f["p50_ms"] / s_r["p50_ms"], 3),
    }
    if with_http:
        result.update(over_http(model, files, stages, http_runs, rounds, workers))
    result["model_only"] = model_only(model, runs)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--http-runs", type=int, default=100)
    ap.add_argument("--no-http", action="store_true")
    ap.add_argument(
        "--rounds", type=int, default=5,
        help="alternations of in-process (2 threads) and HTTP c8 for the throughput ratio",
    )  # fmt: skip
    ap.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes of the served API (serve --workers)",
    )
    ap.add_argument("--out", type=Path, help="write OUT.json and OUT.md")
    args = ap.parse_args()
    result = run(args.model, args.runs, args.http_runs, not args.no_http, args.rounds, args.workers)
    command = "python benchmarks/harness.py " + " ".join(sys.argv[1:])
    text = markdown(result, command.strip())
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
        args.out.with_suffix(".md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
