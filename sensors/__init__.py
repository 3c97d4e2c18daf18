"""FlexLive capture: adapters that turn a camera, a recording, a video or a folder into
:class:`~sensors.bundle.FrameBundle` objects. No inference here.

Entry points: :func:`sensors.uri.parse_source_uri` (``recording:run.db3`` → config),
:func:`sensors.config.create_source` (config → adapter), :class:`sensors.base.FrameSource`
(open / read / close), :func:`sensors.recorder.write_recording` (bundles → ``.db3``;
needs pyrealsense2, imported when it is called; import it from its module). See
docs/sensors.md.
"""

from sensors.base import FrameSource, SourceEnded, SourceError
from sensors.bundle import FrameBundle
from sensors.config import SourceConfig, create_source, parse_source_config
from sensors.frame_queue import DropOldestQueue
from sensors.uri import SourceURIError, parse_source_uri

__all__ = [
    "DropOldestQueue",
    "FrameBundle",
    "FrameSource",
    "SourceConfig",
    "SourceEnded",
    "SourceError",
    "SourceURIError",
    "create_source",
    "parse_source_config",
    "parse_source_uri",
]
