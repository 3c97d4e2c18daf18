"""Source URIs: the one-line way to name a source on the command line.

Grammar: ``SCHEME[:VALUE][?KEY=VALUE&KEY=VALUE…]``

==============================  ==========================================================
``realsense[:SERIAL]``          live RealSense camera, optionally by serial number
``recording:PATH``              RealSense ``.db3`` / ``.bag`` recording
``video:PATH``                  video file (RGB only)
``camera:INDEX``                OpenCV camera index (RGB only), default 0
``folder:PATH``                 image folder, bundles by file name
``synthetic[:PROFILE]``         synthetic camera (sensor profile ``d435``, ``sr305``, …)
==============================  ==========================================================

Query keys set any other field of the scheme's config (see :mod:`sensors.config`), e.g.
``recording:run.db3?real_time=true&modalities=rgb,depth`` or
``realsense:123456?width=848&height=480&emitter_interleave=true`` or
``synthetic:d435?species=print_flat``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from pydantic import ValidationError

from sensors.config import ADAPTERS, SourceConfig, parse_source_config

#: scheme → (config field that VALUE fills, whether VALUE is required)
_VALUE_FIELD: dict[str, tuple[str, bool]] = {
    "realsense": ("serial", False),
    "recording": ("path", True),
    "video": ("path", True),
    "camera": ("index", False),
    "folder": ("path", True),
    "synthetic": ("profile", False),
}

USAGE = (
    "expected one of: realsense[:SERIAL], recording:PATH, video:PATH, camera:INDEX, "
    "folder:PATH, synthetic[:PROFILE] (optionally followed by ?key=value&…)"
)


class SourceURIError(ValueError):
    """A source URI that cannot be understood; the message says why and what is expected."""

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(f"bad source URI {uri!r}: {reason}")
        self.uri = uri
        self.reason = reason


def parse_source_uri(uri: str) -> SourceConfig:
    """Parse ``uri`` into the matching source config; :class:`SourceURIError` if it is bad."""
    text = uri.strip()
    if not text:
        raise SourceURIError(uri, f"empty; {USAGE}")
    head, _, query = text.partition("?")
    scheme, _, value = head.partition(":")
    scheme = scheme.lower()
    if scheme not in _VALUE_FIELD:
        raise SourceURIError(uri, f"unknown source type {scheme!r}; {USAGE}")
    field, required = _VALUE_FIELD[scheme]
    data: dict[str, Any] = {"type": scheme}
    if value:
        data[field] = value
    elif required:
        raise SourceURIError(uri, f"'{scheme}' needs a {field}: {scheme}:{field.upper()}")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise SourceURIError(uri, f"malformed options {query!r} (use key=value&key=value)") from exc
    for key, raw in pairs:
        if key in data:
            raise SourceURIError(uri, f"option {key!r} given twice")
        data[key] = [m.strip() for m in raw.split(",") if m.strip()] if key == "modalities" else raw
    try:
        return parse_source_config(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'][1:]) or err['loc'][0]}: {err['msg']}"
            for err in exc.errors()
        )
        raise SourceURIError(uri, problems) from None


def format_source_uri(config: SourceConfig) -> str:
    """A short URI naming ``config`` (value part only; options are left out)."""
    field, _ = _VALUE_FIELD[config.type]
    value = getattr(config, field)
    return config.type if value is None else f"{config.type}:{value}"


assert set(_VALUE_FIELD) == set(ADAPTERS), "every adapter needs a URI scheme"
