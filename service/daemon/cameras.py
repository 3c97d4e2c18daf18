"""Several cameras in one daemon process, from a YAML file (``liveness daemon --config``).

The file (format in docs/daemon.md, example in docs/examples/cameras.yaml) lists cameras,
each with its source, outputs, modality policy, operating point and tracking settings,
validated by the same pydantic models as the single-camera flags: a source is a URI
string (``recording:door.db3?real_time=true``) or a mapping validated by
:mod:`sensors.config`; tracking is :class:`~service.daemon.config.TrackerConfig`; an
``mqtt:`` section is :class:`~service.daemon.mqtt.MqttConfig`. Errors name the camera and
the field (``camera 'door': source.path: Field required``).

:class:`CameraGroup` runs one :class:`~service.daemon.runner.LivenessDaemon` per camera,
each in its own thread (capture thread + analysis loop), sharing one metrics registry
(label ``camera``), one HTTP server and — per model file — one loaded pipeline (the
pipeline is thread-safe: the REST API shares it between requests too).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from sensors.base import FrameSource
from sensors.config import ADAPTERS, SourceConfig, create_source
from service.daemon.config import CameraSettings, DaemonConfig
from service.daemon.metrics import DaemonMetrics
from service.daemon.mqtt import MqttConfig
from service.daemon.outputs import (
    Output,
    OutputSpecError,
    check_output_spec,
    close_all,
    parse_output,
)
from service.daemon.runner import DaemonSummary, LivenessDaemon
from service.daemon.types import FrameAnalyzer

log = logging.getLogger(__name__)

#: a camera's name: it becomes an MQTT topic level and a Prometheus label value
CAMERA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class CameraConfigError(ValueError):
    """A cameras file that cannot be used; one line per problem, each naming where."""


class CameraSpec(CameraSettings):
    """One camera of a cameras file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Camera name: events' 'camera', metrics label, MQTT topic level")
    source: SourceConfig = Field(description="Source URI string, or a mapping with 'type'")
    outputs: list[Annotated[str, AfterValidator(check_output_spec)]] = Field(
        default_factory=lambda: ["stdout"],
        description="stdout | jsonl:PATH | webhook:URL | mqtt[s]://HOST…; the file's mqtt: "
        "broker is added unless mqtt: false",
    )
    mqtt: bool = Field(
        default=True, description="Publish to the file's mqtt: broker (when it has one)"
    )
    model: Path | None = Field(
        default=None, description="ONNX model for this camera (default: the file's model)"
    )
    operating_point: str | None = Field(
        default=None, description="Operating point, e.g. eer, apcer1 (default: the model's)"
    )
    accepted_modalities: str | None = Field(
        default=None,
        description="Modality sets a decision may rest on, e.g. 'rgb+depth+ir,depth+ir' "
        "(default LIVENESS_ACCEPTED_MODALITIES or any)",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not CAMERA_NAME.match(v):
            raise ValueError(
                "use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit "
                "(it becomes an MQTT topic level and a metrics label)"
            )
        return v

    @field_validator("source", mode="before")
    @classmethod
    def _source_uri(cls, v: Any) -> Any:
        if isinstance(v, str):
            from sensors.uri import SourceURIError, parse_source_uri

            try:
                return parse_source_uri(v)
            except SourceURIError as exc:
                raise ValueError(exc.reason) from None
        return v

    @field_validator("accepted_modalities", mode="before")
    @classmethod
    def _modalities(cls, v: Any) -> Any:
        from service.policy import ModalityPolicy

        if isinstance(v, list):
            v = ",".join(str(s) for s in v)
        if v is None:
            return None
        return ",".join(ModalityPolicy.parse(str(v)).names())

    def daemon_config(self, flush_timeout_s: float) -> DaemonConfig:
        settings = self.model_dump(include=set(CameraSettings.model_fields))
        # one HTTP server for the process: CameraGroup's
        return DaemonConfig(**settings, http_port=None, flush_timeout_s=flush_timeout_s)


class HttpSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", description="Interface of the daemon's HTTP server")
    port: int | None = Field(
        default=8081, ge=0, le=65535, description="Port (0 = any free one, null = no server)"
    )


class CamerasFile(BaseModel):
    """A cameras file: process-wide settings and the cameras."""

    model_config = ConfigDict(extra="forbid")

    model: Path | None = Field(
        default=None, description="ONNX model (default LIVENESS_MODEL_PATH or the bundled one)"
    )
    http: HttpSection = Field(default_factory=HttpSection)
    mqtt: MqttConfig | None = Field(default=None, description="MQTT broker for every camera")
    flush_timeout_s: float = Field(
        default=5.0, ge=0, description="Time outputs get to flush on shutdown"
    )
    cameras: Annotated[list[CameraSpec], Field(min_length=1)]

    @field_validator("cameras")
    @classmethod
    def _unique_names(cls, cameras: list[CameraSpec]) -> list[CameraSpec]:
        seen: set[str] = set()
        for camera in cameras:
            if camera.name in seen:
                raise ValueError(f"camera name {camera.name!r} is used twice")
            seen.add(camera.name)
        return cameras

    def needs_paho(self) -> bool:
        return any(
            (self.mqtt is not None and c.mqtt) or any(o.startswith("mqtt") for o in c.outputs)
            for c in self.cameras
        )


def _where(loc: tuple[Any, ...], raw: Any) -> str:
    """``('cameras', 0, 'source', 'recording', 'path')`` → ``camera 'door': source.path``."""
    prefix = ""
    rest = list(loc)
    if len(rest) >= 2 and rest[0] == "cameras" and isinstance(rest[1], int):
        index = rest[1]
        cameras = raw.get("cameras") if isinstance(raw, dict) else None
        entry = cameras[index] if isinstance(cameras, list) and index < len(cameras) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        prefix = f"camera {name!r}" if isinstance(name, str) else f"camera #{index + 1}"
        rest = rest[2:]
        # a discriminated union puts the chosen type in the path: source.recording.path
        if len(rest) >= 2 and rest[0] == "source" and rest[1] in ADAPTERS:
            del rest[1]
    field = ""
    for part in rest:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    if prefix and field:
        return f"{prefix}: {field}"
    return prefix or field or "file"


def format_validation_error(exc: ValidationError, raw: Any) -> list[str]:
    lines = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{_where(tuple(error['loc']), raw)}: {message}")
    return lines


def parse_cameras(raw: Any, origin: str = "cameras file") -> CamerasFile:
    """Validate already-loaded YAML/JSON data; :class:`CameraConfigError` naming each problem."""
    if not isinstance(raw, dict):
        raise CameraConfigError(
            f"{origin}: expected a mapping with a 'cameras:' list, got {type(raw).__name__}"
        )
    try:
        return CamerasFile.model_validate(raw)
    except ValidationError as exc:
        raise CameraConfigError(
            "\n".join(f"{origin}: {line}" for line in format_validation_error(exc, raw))
        ) from None


def load_cameras_file(path: Path) -> CamerasFile:
    """Read and validate a cameras file (YAML; JSON is YAML too)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CameraConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise CameraConfigError(f"{path}: not valid YAML{at}: {problem}") from None
    return parse_cameras(raw, str(path))


def source_label(config: Any) -> str:
    """A short name for a source config, like the URI that would give it."""
    for field in ("path", "serial", "index", "profile"):
        value = getattr(config, field, None)
        if value is not None:
            return f"{config.type}:{value}"
    return str(config.type)


def build_outputs(camera: CameraSpec, broker: MqttConfig | None) -> list[Output]:
    """The camera's outputs (files opened now, so a bad path fails before the model loads)."""
    outputs: list[Output] = []
    for i, spec in enumerate(camera.outputs):
        try:
            outputs.append(parse_output(spec, camera=camera.name))
        except OutputSpecError as exc:
            close_all(outputs, 0.0)
            raise CameraConfigError(f"camera {camera.name!r}: outputs[{i}]: {exc}") from None
    if broker is not None and camera.mqtt:
        from service.daemon.mqtt import MqttOutput

        outputs.append(MqttOutput(broker, camera.name))
    return outputs


def check_packages(cameras: CamerasFile) -> None:
    """A missing paho-mqtt is one line naming the extra, before anything is loaded."""
    if cameras.needs_paho():
        from service.daemon.mqtt import paho_missing

        missing = paho_missing()
        if missing:
            raise CameraConfigError(missing)


def build_group(
    cameras: CamerasFile,
    analyzers: dict[str, FrameAnalyzer],
    *,
    source_factories: dict[str, Callable[[], FrameSource]] | None = None,
    http_host: str | None = None,
    http_port: int | None | Literal["file"] = "file",
) -> CameraGroup:
    """One :class:`LivenessDaemon` per camera, sharing one metrics registry.

    ``analyzers`` maps camera name → analyser (cameras may share one pipeline);
    ``source_factories`` replaces sources (tests); ``http_*`` override the file's ``http:``.
    """
    check_packages(cameras)
    metrics: DaemonMetrics | None = None
    daemons: list[LivenessDaemon] = []
    try:
        for camera in cameras.cameras:
            view = (
                DaemonMetrics(camera=camera.name)
                if metrics is None
                else metrics.for_camera(camera.name)
            )
            metrics = metrics or view
            outputs = build_outputs(camera, cameras.mqtt)
            factory = (source_factories or {}).get(camera.name)
            if factory is None:
                factory = partial(create_source, camera.source)
            daemons.append(
                LivenessDaemon(
                    factory,
                    analyzers[camera.name],
                    outputs,
                    camera.daemon_config(cameras.flush_timeout_s),
                    source_name=source_label(camera.source),
                    camera=camera.name,
                    metrics=view,
                )
            )
    except BaseException:
        for d in daemons:
            close_all(d.outputs, 0.0)
        raise
    assert metrics is not None
    return CameraGroup(
        daemons,
        metrics,
        http_host=http_host or cameras.http.host,
        http_port=cameras.http.port if http_port == "file" else http_port,
    )


def build_pipeline_analyzers(
    cameras: CamerasFile, model_override: Path | None = None
) -> tuple[dict[str, FrameAnalyzer], list[Any]]:
    """camera name → :class:`~service.daemon.analysis.PipelineAnalyzer`; one pipeline per
    model file, shared by the cameras that use it. Returns the pipelines too (to close)."""
    from service.daemon.analysis import PipelineAnalyzer, build_pipeline
    from service.policy import ModalityPolicy

    pipelines: dict[Path | None, Any] = {}
    analyzers: dict[str, FrameAnalyzer] = {}
    for camera in cameras.cameras:
        model = model_override or camera.model or cameras.model
        if model not in pipelines:
            pipelines[model] = build_pipeline(model)
        pipeline = pipelines[model]
        policy = (
            ModalityPolicy.parse(camera.accepted_modalities)
            if camera.accepted_modalities is not None
            else None
        )
        try:
            analyzers[camera.name] = PipelineAnalyzer(
                pipeline, camera.operating_point, policy, owns_pipeline=False
            )
        except Exception as exc:
            if type(exc).__name__ != "InputError":
                raise
            for p in pipelines.values():
                p.engine.close()
            raise CameraConfigError(f"camera {camera.name!r}: operating_point: {exc}") from None
    return analyzers, list(pipelines.values())


class CameraGroup:
    """Runs several :class:`LivenessDaemon` (one thread each) with one HTTP server.

    With a single camera the HTTP server is that camera's own (``/``, ``/preview.jpg``,
    ``/status`` …, as ``liveness daemon --source`` serves it). With several, ``/healthz``,
    ``/readyz`` and ``/metrics`` cover them all, ``/`` lists them and each camera's
    preview and status live under ``/cameras/<name>/``.
    """

    def __init__(
        self,
        daemons: list[LivenessDaemon],
        metrics: DaemonMetrics,
        *,
        http_host: str = "127.0.0.1",
        http_port: int | None = None,
    ) -> None:
        if not daemons:
            raise ValueError("a camera group needs at least one camera")
        self.daemons = daemons
        self.metrics = metrics
        self.http_host = http_host
        self.http_port = http_port
        self.http: Any = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    def camera(self, name: str) -> LivenessDaemon:
        return next(d for d in self.daemons if d.camera == name)

    # -- health ------------------------------------------------------------------------
    def health(self) -> tuple[bool, str]:
        states = [(d.camera, *d.health()) for d in self.daemons]
        down = [f"{name}: {detail}" for name, ok, detail in states if not ok]
        return (not down), ("; ".join(down) if down else f"{len(states)} camera loop(s) running")

    def readiness(self) -> tuple[bool, str]:
        states = [(d.camera, *d.readiness()) for d in self.daemons]
        ok = all(ready for _, ready, _ in states)
        return ok, "; ".join(f"{name}: {detail}" for name, _, detail in states)

    def start_http(self) -> str | None:
        if self.http_port is None or self.http is not None:
            return self.http.url if self.http is not None else None
        from service.daemon.http import HttpServer, create_daemon_app

        if len(self.daemons) == 1:
            d = self.daemons[0]
            app = create_daemon_app(d.preview, d.metrics, d.health, d.readiness)
        else:
            app = self._group_app()
        self.http = HttpServer(app, self.http_host, self.http_port)
        self.http.start()
        url: str = self.http.url
        return url

    def _group_app(self) -> Any:
        from html import escape

        from fastapi import FastAPI
        from fastapi.responses import HTMLResponse, JSONResponse, Response
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        from service.daemon.http import create_daemon_app

        app = FastAPI(title="FlexLive camera daemon", docs_url=None, redoc_url=None)

        @app.get("/healthz")
        def healthz() -> JSONResponse:
            ok, detail = self.health()
            return JSONResponse(
                {"status": "ok" if ok else "down", "detail": detail}, 200 if ok else 503
            )

        @app.get("/readyz")
        def readyz() -> JSONResponse:
            ok, _ = self.readiness()
            cameras = {}
            for d in self.daemons:
                ready, detail = d.readiness()
                cameras[d.camera] = {"ready": ready, "detail": detail}
            body = {"ready": ok, "cameras": cameras}
            return JSONResponse(body, 200 if ok else 503)

        @app.get("/metrics")
        def prometheus() -> Response:
            self.metrics.refresh_rates()
            return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

        @app.get("/cameras")
        def cameras() -> JSONResponse:
            return JSONResponse(
                [
                    {"camera": d.camera, "source": d.source_name, "ready": d.readiness()[0]}
                    for d in self.daemons
                ]
            )

        @app.get("/", response_class=HTMLResponse)
        def index() -> HTMLResponse:
            rows = "".join(
                f'<li><a href="cameras/{escape(d.camera)}/">{escape(d.camera)}</a> '
                f"— {escape(d.source_name)}</li>"
                for d in self.daemons
            )
            return HTMLResponse(
                "<!doctype html><meta charset=utf-8><title>FlexLive cameras</title>"
                f"<h1>FlexLive cameras</h1><ul>{rows}</ul>"
            )

        for d in self.daemons:
            app.mount(
                f"/cameras/{d.camera}",
                create_daemon_app(d.preview, d.metrics, d.health, d.readiness),
            )
        return app

    # -- lifecycle ---------------------------------------------------------------------
    def stop(self, reason: str = "stop requested") -> None:
        self._stopping.set()
        for d in self.daemons:
            d.stop(reason)

    def run(self) -> dict[str, DaemonSummary]:
        """Run every camera until all have stopped (each on its own end, or :meth:`stop`)."""
        try:
            self.start_http()
            for d in self.daemons:
                thread = threading.Thread(target=self._run_one, args=(d,), name=f"cam-{d.camera}")
                self._threads.append(thread)
                thread.start()
            # Join with a timeout so that the main thread stays free to run signal handlers.
            while any(t.is_alive() for t in self._threads):
                for t in self._threads:
                    t.join(timeout=0.2)
        finally:
            self.stop("daemon shutting down")
            for t in self._threads:
                t.join()
            if self.http is not None:
                self.http.stop()
        return {d.camera: d.summary for d in self.daemons}

    @staticmethod
    def _run_one(daemon: LivenessDaemon) -> None:
        t0 = time.monotonic()
        try:
            daemon.run()
        except Exception:  # one camera's crash must not take the others down
            log.exception("camera %s: daemon loop crashed", daemon.camera)
            daemon.summary.error = daemon.summary.error or "daemon loop crashed (see log)"
        log.info("camera %s stopped after %.1fs", daemon.camera, time.monotonic() - t0)
