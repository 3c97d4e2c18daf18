"""FlexLive capture: adapters that turn a camera, a recording, a video or a folder into
:class:`~sensors.bundle.FrameBundle` objects. No inference here."""

from sensors.bundle import FrameBundle

__all__ = ["FrameBundle"]
