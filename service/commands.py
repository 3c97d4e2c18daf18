"""``liveness serve`` and ``liveness bench``.

``serve`` reads :class:`~service.settings.Settings` (environment ``LIVENESS_*``), applies the
command-line overrides, loads and checks the model *before* binding the port (so a missing
or malformed model is a one-line error, not a traceback) and runs uvicorn.

``bench`` measures batch-1 latency of the engine (preprocessing + ONNX Runtime) for every
modality subset the model supports, and optionally the HTTP round trip of a cropped
request against a running server.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import click
import numpy as np

from models import DEFAULT_MODEL_PATH
from models.preprocess import FaceCrops
from models.spec import parse_subset

logger = logging.getLogger(__name__)


def _settings_or_exit(**overrides: Any) -> Any:
    from service.settings import SettingsError, load_settings

    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _auth_or_exit(settings: Any) -> None:
    """API keys are read and checked before the model loads (a bad keys file, a short
    key, a lockout without keys: one readable line, never the key)."""
    from service.api.auth import check_auth_settings
    from service.settings import SettingsError

    try:
        check_auth_settings(settings)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _engine_or_exit(path: Path, settings: Any) -> Any:
    from service.engine import InferenceEngine, ModelLoadError

    try:
        return InferenceEngine.load(path, settings)
    except ModelLoadError as exc:
        raise click.ClickException(str(exc)) from None


def _port_free_or_exit(host: str, port: int) -> None:
    """Bind the address once before the model loads, as uvicorn will (SO_REUSEADDR), so
    that a port in use is one line naming it and the fix, not a line buried in start-up
    logs after the model has loaded."""
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            other = port + 1 if port < 65535 else 8080
            if exc.errno == errno.EADDRINUSE:
                raise click.ClickException(
                    f"port {port} on {host} is already in use (another liveness serve?); choose "
                    f"another with --port {other}, LIVENESS_PORT={other} or make run PORT={other}"
                ) from None
            raise click.ClickException(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; set another address "
                f"with --host/--port (make run HOST=... PORT=...)"
            ) from None


@click.command("serve")
@click.option("--host", default=None, help="Bind address [env LIVENESS_HOST, 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port [env LIVENESS_PORT, 8000].")
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="ONNX model [env LIVENESS_MODEL_PATH, the bundled model].",
)
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes.")
def serve(host: str | None, port: int | None, model_path: Path | None, workers: int) -> None:
    """Run the REST liveness service."""
    import uvicorn

    from service.cli import log_level_option
    from service.logging_setup import configure_logging

    log_level = log_level_option(click.get_current_context())
    settings = _settings_or_exit(host=host, port=port, model_path=model_path, log_level=log_level)
    _port_free_or_exit(settings.host, settings.port)
    _auth_or_exit(settings)
    configure_logging(settings.log_level, settings.log_json)
    engine = _engine_or_exit(settings.model_path, settings)
    from service.errors import InputError
    from service.pipeline import deployment_operating_points

    try:
        deployment_operating_points(engine.spec, settings)
    except InputError as exc:
        raise click.ClickException(f"LIVENESS_{(exc.field or '').upper()}: {exc.detail}") from None
    if getattr(settings, "models", ""):
        # The extra models are checked here too, before the port is bound: a bad entry is
        # one line naming it, not an application start-up failure inside uvicorn.
        from service.engine import ModelLoadError
        from service.errors import ServiceError
        from service.model_registry import ModelRegistry

        try:
            ModelRegistry.load(settings, default=engine).close()
        except (ModelLoadError, ServiceError, ValueError) as exc:
            raise click.ClickException(f"LIVENESS_MODELS: {getattr(exc, 'detail', exc)}") from None
    logger.info(
        "serving",
        extra={"host": settings.host, "port": settings.port, "model": engine.info.name,
               "sha256": engine.info.sha256, "workers": workers},
    )  # fmt: skip
    # Bounded drain on SIGTERM (an incomplete upload must not hold the process), and a cap
    # on connections, which bounds the memory of uploads in progress (docs/security.md).
    limits: dict[str, Any] = {
        "timeout_graceful_shutdown": settings.shutdown_timeout_s,
        "limit_concurrency": settings.max_connections,
    }
    if workers <= 1:
        from service.api import create_app

        app = create_app(settings, engine=engine)
        uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, **limits)
        return
    # Each worker process builds its own app from the environment; their metrics meet in
    # one directory so that a scrape, whichever worker answers, counts the whole service.
    engine.close()
    os.environ["LIVENESS_MODEL_PATH"] = str(settings.model_path)
    from service.metrics import MULTIPROC_ENV

    own_dir = None
    if not os.environ.get(MULTIPROC_ENV):
        own_dir = tempfile.mkdtemp(prefix="flexlive-metrics-")
        os.environ[MULTIPROC_ENV] = own_dir
    try:
        uvicorn.run(
            "service.api.app:app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_config=None,
            **limits,
        )
    finally:
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)


def _crops(subset: tuple[str, ...], size: int, rng: np.random.Generator) -> FaceCrops:
    return FaceCrops(
        rgb=rng.integers(40, 220, (size, size, 3), dtype=np.uint8) if "rgb" in subset else None,
        depth=rng.integers(480, 560, (size, size), dtype=np.uint16) if "depth" in subset else None,
        ir=rng.integers(20, 200, (size, size), dtype=np.uint8) if "ir" in subset else None,
    )


def _stats(samples_ms: list[float]) -> dict[str, float]:
    xs = sorted(samples_ms)
    p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    return {"median_ms": round(statistics.median(xs), 3), "p95_ms": round(p95, 3), "n": len(xs)}


def bench_engine(engine: Any, runs: int, warmup: int = 10) -> dict[str, dict[str, float]]:
    """Batch-1 latency (preprocess + inference) of every supported subset."""
    rng = np.random.default_rng(0)
    out: dict[str, dict[str, float]] = {}
    for name in engine.spec.supported_subsets:
        crops = _crops(parse_subset(name), engine.spec.input_size, rng)
        for _ in range(warmup):
            engine.predict([crops])
        samples = []
        for _ in range(runs):
            t0 = time.perf_counter()
            result = engine.predict([crops])
            samples.append((time.perf_counter() - t0) * 1000.0)
            if isinstance(result[0], Exception):
                raise click.ClickException(f"{name}: inference failed: {result[0]}")
        out[name] = _stats(samples)
    return out


def bench_http(
    url: str, size: int, runs: int, warmup: int = 5, frame: Path | None = None
) -> dict[str, float]:
    """Round trip of a cropped rgb+depth+ir multipart request (PNG) to ``url``, or of a
    full-frame request with the RGB image ``frame``."""
    import cv2
    import httpx

    if frame is not None:
        files = {"rgb": (frame.name, frame.read_bytes(), "application/octet-stream")}
        data = {"cropped": "false"}
    else:
        c = _crops(("rgb", "depth", "ir"), size, np.random.default_rng(0))
        assert c.rgb is not None and c.depth is not None and c.ir is not None
        files = {
            "rgb": ("rgb.png", cv2.imencode(".png", c.rgb[:, :, ::-1])[1].tobytes(), "image/png"),
            "depth": ("depth.png", cv2.imencode(".png", c.depth)[1].tobytes(), "image/png"),
            "ir": ("ir.png", cv2.imencode(".png", c.ir)[1].tobytes(), "image/png"),
        }
        data = {"cropped": "true"}
    endpoint = url.rstrip("/") + "/liveness"
    samples = []
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not one INFO line per request
    with httpx.Client(timeout=30.0) as client:
        for i in range(warmup + runs):
            t0 = time.perf_counter()
            r = client.post(endpoint, files=files, data=data)
            elapsed = (time.perf_counter() - t0) * 1000.0
            if r.status_code != 200:
                raise click.ClickException(f"{endpoint} answered {r.status_code}: {r.text[:300]}")
            if i >= warmup:
                samples.append(elapsed)
    return _stats(samples)


@click.command("bench")
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_MODEL_PATH,
    show_default=True,
    help="ONNX model to measure.",
)
@click.option("--runs", type=int, default=200, show_default=True, help="Timed runs per subset.")
@click.option("--threads", type=int, default=2, show_default=True, help="Intra-op threads.")
@click.option(
    "--providers", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True
)
@click.option("--url", default=None, help="Also time HTTP round trips against this server.")
@click.option(
    "--frame",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="With --url: also time full-frame requests with this RGB image (PNG/JPEG).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def bench(
    model_path: Path,
    runs: int,
    threads: int,
    providers: str,
    url: str | None,
    frame: Path | None,
    as_json: bool,
) -> None:
    """Measure batch-1 latency of the serving path (engine per subset; optional HTTP)."""
    from service.engine import InferenceEngine, ModelLoadError
    from service.extras import require_modules

    if url:
        require_modules("'liveness bench --url'", "httpx")
    try:
        engine = InferenceEngine.load(
            model_path, providers=providers, intra_op_threads=threads, max_batch=1
        )
    except ModelLoadError as exc:
        raise click.ClickException(str(exc)) from None
    engine.warmup()
    result: dict[str, Any] = {
        "model": {"name": engine.info.name, "version": engine.info.version,
                  "sha256": engine.info.sha256},
        "threads": threads,
        "providers": list(engine.info.providers),
        "engine_batch1": bench_engine(engine, runs),
    }  # fmt: skip
    if url:
        result["http_cropped_rgb+depth+ir"] = bench_http(url, engine.spec.input_size, runs)
        if frame is not None:
            result["http_full_frame_rgb"] = bench_http(url, 0, runs, frame=frame)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(
        f"model {engine.info.name} {engine.info.version} ({engine.info.sha256[:12]}), "
        f"{threads} thread(s), {', '.join(engine.info.providers)}"
    )
    click.echo(f"{'subset':<14}{'median ms':>11}{'p95 ms':>10}{'runs':>7}")
    for name, s in result["engine_batch1"].items():
        click.echo(f"{name:<14}{s['median_ms']:>11.2f}{s['p95_ms']:>10.2f}{s['n']:>7}")
    if url:
        s = result["http_cropped_rgb+depth+ir"]
        click.echo(
            f"HTTP cropped rgb+depth+ir round trip: median {s['median_ms']:.2f} ms, "
            f"p95 {s['p95_ms']:.2f} ms over {s['n']}"
        )
    if url and frame is not None:
        s = result["http_full_frame_rgb"]
        click.echo(
            f"HTTP full-frame rgb ({frame.name}) round trip: median {s['median_ms']:.2f} ms, "
            f"p95 {s['p95_ms']:.2f} ms over {s['n']}"
        )
