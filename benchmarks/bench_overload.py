"""Overload: 16 clients × full-frame RGB + depth + IR against a real ``liveness serve``.

What is measured (issue 10, "Overload, measured"): one bona fide synthetic capture
(``synth``, profile d435, 640×480, RGB + 16-bit depth + IR as PNG, about 1 MB) is posted
full-frame (``cropped=false``) to a ``liveness serve`` subprocess with the bundled model:

1. *unloaded*: one client, ``--unloaded`` requests one after the other: round-trip p50/p99;
2. *loaded*: ``--clients`` closed-loop clients for ``--duration`` seconds; a client that
   gets 503 waits what ``Retry-After`` says (as a well-behaved client does) and tries
   again. Reported: the accepted requests' p50/p99 round trip, p99 / unloaded p50 (the
   issue's budget is 4×), the shed rate (503s / all answers), accepted requests/s, and
   the server's own ``liveness_shed_requests_total`` by reason.

The server runs with its defaults except what the options change (e.g. ``--ratio 0``
turns the wait budget off: the fixed queue of 8 and 5 s timeout of before). Client and
server share the machine's CPUs; say which machine in the results.

Run (from the repository root, venv active)::

    python benchmarks/bench_overload.py                 # defaults: 16 clients, 30 s
    python benchmarks/bench_overload.py --ratio 0       # the wait budget off (before)

Prints one JSON object (also written to ``--out`` if given).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def capture_files(seed: int) -> dict[str, tuple[str, bytes, str]]:
    """One bona fide 640×480 RGB + depth + IR capture, encoded as a client would send it."""
    import cv2

    from synth import render_scene

    sc = render_scene("bona_fide", "d435", seed)
    rgb = cv2.imencode(".png", cv2.cvtColor(np.asarray(sc.rgb), cv2.COLOR_RGB2BGR))[1]
    depth = cv2.imencode(".png", np.asarray(sc.depth, dtype=np.uint16))[1]
    ir = cv2.imencode(".png", np.asarray(sc.ir))[1]
    return {
        "rgb": ("rgb.png", rgb.tobytes(), "image/png"),
        "depth": ("depth.png", depth.tobytes(), "image/png"),
        "ir": ("ir.png", ir.tobytes(), "image/png"),
    }


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values), q)), 1) if values else float("nan")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, env_overrides: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    import httpx

    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVENESS_")}
    env.update(env_overrides)
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 180
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
        while True:
            try:
                r = c.get("/readyz")
                if r.status_code == 200 and r.json()["full_frame"]:
                    return proc
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit(f"server did not become ready; see {log}")
            time.sleep(0.2)


def post(client: Any, files: dict[str, Any]) -> tuple[int, float, float, float]:
    """(status, round trip ms, server analysis ms, Retry-After s)."""
    t0 = time.perf_counter()
    r = client.post("/liveness", files=files, data={"cropped": "false"})
    ms = (time.perf_counter() - t0) * 1000.0
    analysis_ms = float("nan")
    if r.status_code == 200:
        body = r.json()
        if not body["faces"]:
            raise SystemExit("the benchmark capture has no face: pick another --seed")
        analysis_ms = float(body["timings_ms"]["total"])
    return r.status_code, ms, analysis_ms, float(r.headers.get("retry-after", 0) or 0)


def server_view(url: str) -> dict[str, Any]:
    """The server's own account: sheds by reason and mean seconds per phase."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    samples = [
        s
        for f in text_string_to_metric_families(httpx.get(url + "/metrics").text)
        for s in f.samples
    ]

    def mean_ms(name: str, **labels: str) -> float:
        def total(suffix: str) -> float:
            return sum(
                s.value
                for s in samples
                if s.name == name + suffix and all(s.labels.get(k) == v for k, v in labels.items())
            )

        n = total("_count")
        return round(1000 * total("_sum") / n, 1) if n else float("nan")

    return {
        "shed_by_reason": {
            s.labels["reason"]: s.value for s in samples if s.name == "liveness_shed_requests_total"
        },
        "mean_ms": {
            "body_read": mean_ms("liveness_body_read_seconds"),
            "queue_wait": mean_ms("liveness_queue_wait_seconds"),
            "analysis": mean_ms("liveness_stage_duration_seconds", stage="total"),
        },
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import httpx

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--duration", type=float, default=30.0, help="Loaded phase, seconds.")
    ap.add_argument("--unloaded", type=int, default=40, help="Requests in the unloaded phase.")
    ap.add_argument("--ratio", type=float, default=None, help="LIVENESS_QUEUE_WAIT_RATIO.")
    ap.add_argument("--max-concurrent", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None, help="LIVENESS_INTRA_OP_THREADS.")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    overrides = {"LIVENESS_LOG_LEVEL": "WARNING"}
    if args.ratio is not None:
        overrides["LIVENESS_QUEUE_WAIT_RATIO"] = str(args.ratio)
    if args.max_concurrent is not None:
        overrides["LIVENESS_MAX_CONCURRENT_REQUESTS"] = str(args.max_concurrent)
    if args.threads is not None:
        overrides["LIVENESS_INTRA_OP_THREADS"] = str(args.threads)
    files = capture_files(args.seed)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = Path(tempfile.mkdtemp(prefix="bench_overload_")) / "serve.log"
    proc = start_server(port, overrides, log)
    try:
        with httpx.Client(base_url=url, timeout=60) as c:
            card = c.get("/v1/models").json()
            for _ in range(5):
                post(c, files)
            runs = [post(c, files) for _ in range(args.unloaded)]
        unloaded = [r[1] for r in runs]
        unloaded_analysis = [r[2] for r in runs]
        p50_unloaded = float(np.median(unloaded))

        results: list[tuple[int, float, float]] = []
        lock = threading.Lock()
        stop_at = time.monotonic() + args.duration

        def client() -> None:
            with httpx.Client(base_url=url, timeout=60) as c:
                while time.monotonic() < stop_at:
                    code, ms, analysis_ms, retry_after = post(c, files)
                    with lock:
                        results.append((code, ms, analysis_ms))
                    if code == 503:
                        time.sleep(retry_after)

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
        server = server_view(url)
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    accepted = [ms for code, ms, _ in results if code == 200]
    analysis = [a for code, _, a in results if code == 200]
    n_shed = sum(1 for code, _, _ in results if code == 503)
    other = sorted({code for code, _, _ in results if code not in (200, 503)})
    p99 = pct(accepted, 99)
    out: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "model": f"{card['name']} {card['version']}",
        "capture": {k: len(v[1]) for k, v in files.items()},
        "server": overrides,
        "unloaded_ms": {
            "p50": round(p50_unloaded, 1),
            "p99": pct(unloaded, 99),
            "analysis_p50": pct(unloaded_analysis, 50),
        },
        "loaded": {
            "clients": args.clients,
            "duration_s": round(wall, 1),
            "answers": len(results),
            "accepted": len(accepted),
            "shed_503": n_shed,
            "other_statuses": other,
            "shed_rate": round(n_shed / max(1, len(results)), 3),
            "accepted_per_s": round(len(accepted) / wall, 2),
            "accepted_ms": {"p50": pct(accepted, 50), "p99": p99, "max": pct(accepted, 100)},
            "accepted_analysis_ms": {"p50": pct(analysis, 50), "p99": pct(analysis, 99)},
            "p99_over_unloaded_p50": round(p99 / p50_unloaded, 2),
            "server": server,
        },
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return out


if __name__ == "__main__":
    main()
