"""``liveness daemon``: run the live camera daemon on a source.

Example::

    liveness daemon --source realsense --output stdout --output jsonl:events.jsonl \\
        --output webhook:http://door-controller.local/liveness --port 8081
    liveness daemon --config cameras.yaml      # several cameras (docs/daemon.md)
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import click

log = logging.getLogger(__name__)


@click.command("daemon")
@click.option(
    "--source",
    "source_uri",
    default=None,
    help="realsense[:SERIAL] | recording:PATH | video:PATH | camera:INDEX | folder:PATH | "
    "synthetic[:PROFILE], with optional ?key=value options (docs/sensors.md).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="YAML file listing cameras, each with its source, outputs, policy and thresholds "
    "(docs/daemon.md); instead of --source.",
)
@click.option(
    "--name",
    "camera_name",
    default="default",
    show_default=True,
    help="The camera's name with --source: in events, metrics labels and MQTT topics.",
)
@click.option(
    "--output",
    "outputs",
    multiple=True,
    default=("stdout",),
    show_default=True,
    help="stdout | jsonl:PATH | webhook:URL | mqtt[s]://[USER:PASSWORD@]HOST[:PORT][?qos=1&"
    "topic_prefix=flexlive&frames=true]; repeat for several.",
)
@click.option("--max-frames", type=int, default=None, help="Stop after N processed frames.")
@click.option(
    "--port",
    type=int,
    default=8081,
    show_default=True,
    help="Port of /healthz, /readyz, /metrics and the preview page (0 = any free port).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP bind address.")
@click.option("--no-http", is_flag=True, help="Do not start the HTTP server.")
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="ONNX model [env LIVENESS_MODEL_PATH, the bundled model].",
)
@click.option("--operating-point", default=None, help="Model operating point (e.g. eer).")
@click.option(
    "--accepted-modalities",
    default=None,
    help="Modality sets a decision may rest on, e.g. 'rgb+depth+ir,depth+ir'; a frame whose "
    "used modalities fall short is uncertain (modality_not_accepted) "
    "[env LIVENESS_ACCEPTED_MODALITIES, any].",
)
@click.option(
    "--on-end",
    type=click.Choice(["stop", "reopen"]),
    default="stop",
    show_default=True,
    help="When a recording/video/folder ends: stop, or reopen it like a lost camera.",
)
@click.option(
    "--queue-size",
    type=int,
    default=1,
    show_default=True,
    help="Frames buffered; a live camera drops the oldest when full (1 = latest frame).",
)
@click.option(
    "--stall-timeout",
    type=float,
    default=2.0,
    show_default=True,
    help="Seconds without a frame before the source counts as stalled; a live source is "
    "reopened, a file is waited for.",
)
@click.option(
    "--min-live-frames",
    type=int,
    default=None,
    help="Consecutive frames in the live band before a track is live (default 10).",
)
@click.option("--window", type=int, default=None, help="Scored frames aggregated per track.")
def daemon(
    source_uri: str | None,
    config_path: Path | None,
    camera_name: str,
    outputs: tuple[str, ...],
    max_frames: int | None,
    port: int,
    host: str,
    no_http: bool,
    model_path: Path | None,
    operating_point: str | None,
    accepted_modalities: str | None,
    on_end: str,
    queue_size: int,
    stall_timeout: float,
    min_live_frames: int | None,
    window: int | None,
) -> None:
    """Decide, frame by frame and face by face, whether a live person is in front of a camera."""
    from pydantic import ValidationError

    if config_path is not None:
        if source_uri is not None:
            raise click.UsageError("give either --source or --config, not both")
        _run_cameras_file(config_path, model_path=model_path, no_http=no_http)
        return
    if source_uri is None:
        raise click.UsageError("give --source URI (one camera) or --config FILE (several)")
    from service.daemon.cameras import CAMERA_NAME

    if not CAMERA_NAME.match(camera_name):
        raise click.BadParameter(
            "use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit",
            param_hint="--name",
        )

    from sensors.config import create_source
    from sensors.uri import SourceURIError, parse_source_uri
    from service.daemon.config import DaemonConfig, TrackerConfig
    from service.daemon.outputs import OutputSpecError, parse_output
    from service.daemon.runner import LivenessDaemon

    try:
        source_config = parse_source_uri(source_uri)
    except SourceURIError as exc:
        raise click.BadParameter(str(exc), param_hint="--source") from None
    try:
        sinks = [parse_output(spec, camera=camera_name) for spec in outputs]
    except OutputSpecError as exc:
        raise click.BadParameter(str(exc), param_hint="--output") from None
    tracker_overrides: dict[str, Any] = {}
    if min_live_frames is not None:
        tracker_overrides["min_live_frames"] = min_live_frames
    if window is not None:
        tracker_overrides["window"] = window
    try:
        config = DaemonConfig(
            tracker=TrackerConfig(**tracker_overrides),
            queue_size=queue_size,
            stall_timeout_s=stall_timeout,
            on_end=on_end,  # type: ignore[arg-type]
            max_frames=max_frames,
            http_host=host,
            http_port=None if no_http else port,
        )
    except ValidationError as exc:
        raise click.UsageError(str(exc)) from None

    analyzer = _build_analyzer(model_path, operating_point, accepted_modalities)
    runner = LivenessDaemon(
        lambda: create_source(source_config),
        analyzer,
        sinks,
        config,
        source_name=source_uri,
        camera=camera_name,
    )

    def on_signal(signum: int, frame: FrameType | None) -> None:
        runner.stop(f"signal {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        if not no_http:
            try:
                url = runner.start_http()
            except RuntimeError as exc:
                raise click.ClickException(f"{exc} ({host}:{port})") from None
            log.info("preview at %s/  (health %s/readyz, metrics %s/metrics)", url, url, url)
        summary = runner.run()
    finally:
        analyzer.close()
    log.info(
        "final decisions: %s",
        ", ".join(f"#{tid} {d}" for tid, d in summary.final_decisions.items()) or "no tracks",
    )
    sys.stdout.flush()
    if summary.error is not None:
        # a file that cannot be played with --on-end stop: a failure, not a normal end
        where = "" if source_uri.split("?")[0] in summary.error else f" ({source_uri})"
        raise click.ClickException(f"source failed: {summary.error}{where}")


#: options that describe one camera: in a cameras file they are set per camera
_CAMERA_OPTIONS = (
    "camera_name",
    "outputs",
    "max_frames",
    "operating_point",
    "accepted_modalities",
    "on_end",
    "queue_size",
    "stall_timeout",
    "min_live_frames",
    "window",
)


def _run_cameras_file(path: Path, *, model_path: Path | None, no_http: bool) -> None:
    """``--config``: every camera of the file in this process (service.daemon.cameras)."""
    from click.core import ParameterSource

    from service.daemon.cameras import (
        CameraConfigError,
        build_group,
        build_pipeline_analyzers,
        check_packages,
        load_cameras_file,
    )

    ctx = click.get_current_context()
    given = [
        "--" + name.replace("_", "-").replace("camera-name", "name")
        for name in _CAMERA_OPTIONS
        if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE
    ]
    if given:
        raise click.UsageError(
            f"{', '.join(given)} cannot be combined with --config: set it per camera in the file"
        )
    port_given = ctx.get_parameter_source("port") == ParameterSource.COMMANDLINE
    host_given = ctx.get_parameter_source("host") == ParameterSource.COMMANDLINE
    # several cameras log side by side: say which thread (cam-<name>, capture-<name>) speaks
    for handler in logging.getLogger().handlers:
        plain = getattr(handler.formatter, "_fmt", None) or ""
        if plain.endswith("%(name)s: %(message)s"):  # the CLI's plain format, not JSON
            handler.setFormatter(
                logging.Formatter(plain.replace("%(name)s:", "%(name)s [%(threadName)s]:"))
            )
    try:
        cameras = load_cameras_file(path)
        check_packages(cameras)  # before the model is loaded
    except CameraConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--config") from None
    try:
        analyzers, pipelines = build_pipeline_analyzers(cameras, model_path)
    except CameraConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--config") from None
    except Exception as exc:  # settings/model errors carry a readable message
        if type(exc).__name__ in {"SettingsError", "ModelLoadError", "InputError"}:
            raise click.ClickException(str(exc)) from None
        raise
    try:
        try:
            group = build_group(
                cameras,
                analyzers,
                http_host=ctx.params["host"] if host_given else None,
                http_port=None if no_http else (ctx.params["port"] if port_given else "file"),
            )
        except CameraConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="--config") from None

        def on_signal(signum: int, frame: FrameType | None) -> None:
            group.stop(f"signal {signal.Signals(signum).name}")

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            url = group.start_http()
        except RuntimeError as exc:
            raise click.ClickException(f"{exc} ({group.http_host}:{group.http_port})") from None
        if url is not None:
            log.info("cameras at %s/  (health %s/readyz, metrics %s/metrics)", url, url, url)
        summaries = group.run()
    finally:
        for pipeline in pipelines:
            pipeline.engine.close()
    sys.stdout.flush()
    failed = {name: s.error for name, s in summaries.items() if s.error is not None}
    for name, s in summaries.items():
        decisions = ", ".join(f"#{tid} {d}" for tid, d in s.final_decisions.items())
        log.info("camera %s: final decisions: %s", name, decisions or "no tracks")
    if failed:
        raise click.ClickException(
            "; ".join(f"camera {name!r}: source failed: {error}" for name, error in failed.items())
        )


def _build_analyzer(
    model_path: Path | None, operating_point: str | None, accepted_modalities: str | None
) -> Any:
    from service.daemon.analysis import build_pipeline_analyzer

    try:
        return build_pipeline_analyzer(
            model_path, operating_point, accepted_modalities=accepted_modalities
        )
    except Exception as exc:  # settings/model errors carry a readable message
        name = type(exc).__name__
        if name in {"SettingsError", "ModelLoadError", "InputError"}:
            raise click.ClickException(str(exc)) from None
        raise
