"""The daemon's own HTTP server: health, readiness, metrics and the live preview page.

``/healthz``   200 while the daemon's loop runs
``/readyz``    200 when the model is warmed and frames are arriving; 503 with the reason
``/metrics``   Prometheus text (``liveness_daemon_*``)
``/``          preview page: the latest frame with boxes, scores and decisions, refreshed
               by polling ``/preview.jpg`` (also ``/preview.mjpg`` for an MJPEG viewer)
``/status``    JSON summary of the latest frame (tracks, fps, source state, per-modality
               health)
``/events``    the last decisions, newest first; ``/events/<id>.jpg`` a snapshot of each
               face (kept in memory only, the last 20)

Served by uvicorn in a background thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.daemon.metrics import DaemonMetrics
from service.daemon.preview import PreviewState
from service.daemon.preview_page import PAGE

log = logging.getLogger(__name__)


def create_daemon_app(
    preview: PreviewState,
    metrics: DaemonMetrics,
    health: Callable[[], tuple[bool, str]],
    readiness: Callable[[], tuple[bool, str]],
) -> FastAPI:
    app = FastAPI(title="FlexLive camera daemon", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        ok, detail = health()
        return JSONResponse(
            {"status": "ok" if ok else "down", "detail": detail}, 200 if ok else 503
        )

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        ok, detail = readiness()
        return JSONResponse({"ready": ok, "detail": detail}, 200 if ok else 503)

    @app.get("/metrics")
    def prometheus() -> Response:
        metrics.refresh_rates()
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(PAGE)

    @app.get("/status")
    def status() -> JSONResponse:
        ok, detail = readiness()
        metrics.refresh_rates()
        body: dict[str, Any] = {"ready": ok, "detail": detail, **preview.summary()}
        body["fps_in"] = round(metrics.rate_in.rate(), 2)
        body["fps_processed"] = round(metrics.rate_processed.rate(), 2)
        return JSONResponse(body)

    @app.get("/preview.jpg")
    def preview_jpeg() -> Response:
        latest = preview.jpeg()
        if latest is None:
            return JSONResponse({"detail": "no frame analysed yet"}, 503)
        seq, data = latest
        headers = {"Cache-Control": "no-store", "X-Frame-Seq": str(seq)}
        return Response(data, media_type="image/jpeg", headers=headers)

    @app.get("/events")
    def events() -> JSONResponse:
        """The last decisions (newest first), each with ``snapshot`` true when
        ``events/<id>.jpg`` holds a picture of the face. In memory only."""
        return JSONResponse({"events": preview.events()})

    @app.get("/events/{event_id}.jpg")
    def event_snapshot(event_id: int) -> Response:
        data = preview.event_snapshot(event_id)
        if data is None:
            return JSONResponse({"detail": f"no snapshot for event {event_id}"}, 404)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get("/preview.mjpg")
    async def preview_mjpeg() -> StreamingResponse:
        async def frames() -> AsyncIterator[bytes]:
            last = -1
            while True:
                latest = await asyncio.to_thread(preview.jpeg)
                if latest is not None and latest[0] != last:
                    last = latest[0]
                    yield (
                        b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                        + str(len(latest[1])).encode()
                        + b"\r\n\r\n"
                        + latest[1]
                        + b"\r\n"
                    )
                await asyncio.sleep(0.05)

        return StreamingResponse(frames(), media_type="multipart/x-mixed-replace; boundary=frame")

    return app


class HttpServer:
    """uvicorn serving ``app`` in a daemon thread; ``port`` 0 picks a free port."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,  # an open MJPEG stream must not hold up shutdown
        )
        self.server = uvicorn.Server(config)
        self.host = host
        self._thread = threading.Thread(target=self.server.run, name="daemon-http", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the daemon's HTTP server did not start (port in use?)")
            time.sleep(0.02)
        log.info("daemon HTTP on %s", self.url)

    @property
    def port(self) -> int:
        sockets = self.server.servers[0].sockets
        return int(sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)
