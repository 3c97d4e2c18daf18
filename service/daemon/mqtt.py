"""MQTT output: decision events (and optionally frame events) published per camera.

Topics, with ``topic_prefix`` (default ``flexlive``) and the camera's name:

``<prefix>/<camera>/events``     each decision event (JSON, as POSTed by ``webhook:``)
``<prefix>/<camera>/frames``     each frame event, only with ``frames: true`` (busy: one
                                 message per analysed frame)
``<prefix>/<camera>/available``  ``online`` / ``offline``, retained; ``offline`` is also the
                                 connection's last will, so a killed daemon or a lost
                                 network turns it ``offline`` at the broker

One connection per camera, so each camera has its own last will. paho-mqtt's network
thread connects, reconnects (back-off 1 s doubling to 30 s) and re-announces ``online``
after every (re)connection. Publishing never blocks the daemon: messages with QoS 1/2
wait in paho's bounded queue (``max_queued``) while the broker is away and go out on
reconnection; a QoS 0 message published while disconnected is dropped and counted, as
is any message the full queue refuses. On close the daemon publishes ``offline``, waits
up to its flush timeout for it and the last event, and disconnects.

``paho-mqtt`` is the ``mqtt`` extra; :func:`parse_mqtt_uri` / config loading check for it
before the model is loaded, so a missing package is one line naming the extra.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from service.daemon.outputs import Output, OutputSpecError, dumps

log = logging.getLogger(__name__)

ONLINE = "online"
OFFLINE = "offline"


def topic_segment_problem(text: str) -> str | None:
    """Why ``text`` cannot be (part of) an MQTT topic name we publish to, or None."""
    if not text:
        return "must not be empty"
    bad = [c for c in ("+", "#", "\x00") if c in text]
    if bad:
        return f"must not contain MQTT wildcards or NUL ({', '.join(map(repr, bad))})"
    return None


class MqttConfig(BaseModel):
    """The broker and how to publish to it (``mqtt:`` in a cameras file, or an ``mqtt://`` URI)."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, description="Broker host name or address")
    port: int | None = Field(
        default=None, ge=1, le=65535, description="Broker port (default 1883, 8883 with TLS)"
    )
    topic_prefix: str = Field(
        default="flexlive", description="First topic level: <prefix>/<camera>/events"
    )
    qos: Literal[0, 1, 2] = Field(
        default=1, description="QoS of every message (events, frames, availability)"
    )
    frames: bool = Field(
        default=False, description="Also publish every frame event on <prefix>/<camera>/frames"
    )
    username: str | None = Field(default=None, description="Broker user name")
    password: SecretStr | None = Field(default=None, description="Broker password")
    client_id: str | None = Field(
        default=None,
        description="MQTT client id prefix; the camera's name is appended "
        "(default flexlive-<pid>-<camera>)",
    )
    keepalive_s: int = Field(
        default=30, ge=5, le=3600, description="Keep-alive; the broker sends the will after 1.5x"
    )
    connect_wait_s: float = Field(
        default=5.0,
        ge=0,
        description="At start-up, wait this long for the broker before the camera starts "
        "(so the first QoS 0 events are not dropped); then go on and keep reconnecting",
    )
    max_queued: int = Field(
        default=1000, ge=1, description="Messages held while the broker is away (then dropped)"
    )
    tls: bool = Field(default=False, description="Connect with TLS (mqtts)")
    ca_certs: Path | None = Field(
        default=None, description="CA bundle to verify the broker (default: the system's)"
    )
    certfile: Path | None = Field(default=None, description="Client certificate (mutual TLS)")
    keyfile: Path | None = Field(default=None, description="Client certificate's key")
    tls_insecure: bool = Field(
        default=False, description="Do not check the broker's host name against its certificate"
    )

    @field_validator("qos", mode="before")
    @classmethod
    def _qos_text(cls, v: Any) -> Any:
        # from a URI (?qos=1) it arrives as text
        return int(v) if isinstance(v, str) and v.strip() in ("0", "1", "2") else v

    @field_validator("topic_prefix")
    @classmethod
    def _topic_prefix(cls, v: str) -> str:
        v = v.strip("/")
        problem = topic_segment_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("ca_certs", "certfile", "keyfile")
    @classmethod
    def _readable(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_file():
            raise ValueError(f"{v} is not a readable file")
        return v

    @property
    def effective_port(self) -> int:
        return self.port or (8883 if self.tls else 1883)

    def topics(self, camera: str) -> dict[str, str]:
        base = f"{self.topic_prefix}/{camera}"
        return {
            "events": f"{base}/events",
            "frames": f"{base}/frames",
            "available": f"{base}/available",
        }


def paho_missing() -> str | None:
    """A one-line message naming the extra when paho-mqtt is not installed, else None."""
    from service.extras import install_hint, is_installed

    if is_installed("paho"):
        return None
    return f"the MQTT output needs paho-mqtt, which is not installed: {install_hint('paho')}"


def parse_mqtt_uri(spec: str) -> MqttConfig:
    """``mqtt[s]://[USER[:PASSWORD]@]HOST[:PORT][?qos=1&topic_prefix=…&frames=true]``."""
    parts = urlsplit(spec)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise OutputSpecError(
            f"bad output {spec!r}: expected mqtt[s]://[USER:PASSWORD@]HOST[:PORT]"
        )
    data: dict[str, Any] = {"host": parts.hostname, "tls": parts.scheme == "mqtts"}
    try:
        if parts.port is not None:
            data["port"] = parts.port
    except ValueError as exc:  # a port that is not a number
        raise OutputSpecError(f"bad output {spec!r}: {exc}") from None
    if parts.username:
        data["username"] = unquote(parts.username)
    if parts.password:
        data["password"] = unquote(parts.password)
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise OutputSpecError(
            f"bad output {spec!r}: malformed options {parts.query!r} (use key=value&key=value)"
        ) from None
    for key, value in pairs:
        data[key] = value
    try:
        return MqttConfig(**data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise OutputSpecError(f"bad output {_redacted(spec)!r}: {problems}") from None


def _redacted(spec: str) -> str:
    parts = urlsplit(spec)
    if parts.password:
        return spec.replace(f":{parts.password}@", ":***@", 1)
    return spec


class MqttOutput(Output):
    """Publishes one camera's events to an MQTT broker (topics in the module docstring)."""

    def __init__(
        self,
        config: MqttConfig,
        camera: str,
        *,
        on_drop: Callable[[], None] | None = None,
    ) -> None:
        problem = topic_segment_problem(camera) or ("/" in camera and "must not contain '/'")
        if problem:
            raise OutputSpecError(
                f"camera name {camera!r} cannot be an MQTT topic level: {problem}"
            )
        self.config = config
        self.camera = camera
        self.topics = config.topics(camera)
        self.name = f"mqtt://{config.host}:{config.effective_port}/{self.topics['events']}"
        self._on_drop = on_drop
        self._client: Any = None
        self._last_info: Any = None
        self._closing = False
        self.published = 0
        self.dropped = 0
        self.connects = 0
        self._connected = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        import paho.mqtt.client as mqtt

        c = self.config
        client_id = f"{c.client_id or f'flexlive-{os.getpid()}'}-{self.camera}"
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        client.will_set(self.topics["available"], OFFLINE, qos=c.qos, retain=True)
        if c.username is not None:
            password = c.password.get_secret_value() if c.password is not None else None
            client.username_pw_set(c.username, password)
        if c.tls:
            client.tls_set(
                ca_certs=str(c.ca_certs) if c.ca_certs else None,
                certfile=str(c.certfile) if c.certfile else None,
                keyfile=str(c.keyfile) if c.keyfile else None,
            )
            client.tls_insecure_set(c.tls_insecure)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_queued_messages_set(c.max_queued)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self._client = client
        client.connect_async(c.host, c.effective_port, keepalive=c.keepalive_s)
        client.loop_start()
        log.info("%s: connecting (camera %s)", self.name, self.camera)
        if c.connect_wait_s and not self._connected.wait(c.connect_wait_s):
            log.warning(
                "%s: broker not reached within %.1fs; starting anyway and retrying "
                "(QoS 0 messages are dropped until it answers)",
                self.name,
                c.connect_wait_s,
            )

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            # paho keeps retrying; a refused login will not fix itself, so say it each time
            log.error("%s: broker refused the connection: %s", self.name, reason)
            return
        self.connects += 1
        log.info("%s: connected; %s is %s", self.name, self.topics["available"], ONLINE)
        client.publish(self.topics["available"], ONLINE, qos=self.config.qos, retain=True)
        self._connected.set()

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self._connected.clear()
        if not self._closing:
            log.warning("%s: disconnected (%s); reconnecting", self.name, reason)

    # -- events ------------------------------------------------------------------------
    def frame(self, event: dict[str, Any]) -> None:
        if self.config.frames:
            self._publish(self.topics["frames"], dumps(event))

    def decision(self, event: dict[str, Any]) -> None:
        self._publish(self.topics["events"], dumps(event))

    def _publish(self, topic: str, payload: str) -> None:
        import paho.mqtt.client as mqtt

        if self._client is None:
            raise RuntimeError(f"{self.name}: publish before start()")
        info = self._client.publish(topic, payload, qos=self.config.qos)
        queued = info.rc == mqtt.MQTT_ERR_SUCCESS or (
            info.rc == mqtt.MQTT_ERR_NO_CONN and self.config.qos > 0
        )
        if not queued:
            self.dropped += 1
            if self._on_drop:
                self._on_drop()
            log.warning(
                "%s: message to %s dropped (%s)", self.name, topic, mqtt.error_string(info.rc)
            )
            return
        self.published += 1
        self._last_info = info

    def close(self, timeout: float) -> None:
        client = self._client
        if client is None:
            return
        deadline = time.monotonic() + timeout
        self._closing = True
        announced = False
        try:
            if self._last_info is not None:
                self._wait(self._last_info, deadline)
            offline = client.publish(
                self.topics["available"], OFFLINE, qos=self.config.qos, retain=True
            )
            announced = self._wait(offline, deadline)
        finally:
            if announced:
                client.disconnect()
                client.loop_stop()
            else:
                # A clean DISCONNECT would cancel the last will and leave "online" retained:
                # drop the connection instead, so the broker announces "offline" for us.
                log.warning(
                    "%s: could not announce %s before shutdown; leaving it to the last will",
                    self.name,
                    OFFLINE,
                )
                client.loop_stop()
                sock = client.socket()
                if sock is not None:
                    sock.close()
            self._client = None

    @staticmethod
    def _wait(info: Any, deadline: float) -> bool:
        try:
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
        except (RuntimeError, ValueError):  # never queued, or the connection is gone
            return False
        return bool(info.is_published())
