"""The common surface of every capture adapter: open, read, close.

An adapter turns one source (camera, recording, video, folder, synthetic scene) into
:class:`~sensors.bundle.FrameBundle` objects. Failures are typed so that a consumer (the
camera daemon) can tell "the source is finished" from "the source broke, try again":

- :class:`SourceEnded` — a finite source (recording, video, folder) has no more frames.
- :class:`SourceError` — the source cannot be opened or stopped delivering (camera
  unplugged, corrupt file, missing stream); reopening may help.

``read(timeout)`` returns ``None`` when no frame arrived within ``timeout`` seconds — a
stall, which the caller decides how to treat.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator
from types import TracebackType
from typing import Any, ClassVar

from sensors.bundle import FrameBundle

log = logging.getLogger(__name__)

#: Default wait for one frame before ``read`` reports a stall (``None``).
DEFAULT_READ_TIMEOUT_S = 2.0


class SourceError(RuntimeError):
    """The source failed (cannot open, device lost, corrupt data); reopening may help."""


class SourceEnded(SourceError):  # noqa: N818 - reads as the event it reports
    """A finite source has delivered its last frame."""


class FrameSource(ABC):
    """One capture adapter. Use as a context manager or call open/close yourself.

    Subclasses set ``kind`` (the config ``type`` they serve) and implement
    :meth:`_open`, :meth:`_read` and :meth:`_close`; this class keeps the open/closed state,
    numbers the frames and stamps the bundle's ``source``.
    """

    kind: ClassVar[str] = ""
    #: True for sources that produce frames in real time whatever the consumer does
    #: (cameras); False for sources that can be read as fast as the consumer wants.
    live: ClassVar[bool] = False

    def __init__(self, config: Any) -> None:
        self.config = config
        self._opened = False
        self._frame_index = 0

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._opened

    @property
    def description(self) -> str:
        """Human-readable name of the source, for logs and the bundle's ``source`` field."""
        return self.kind

    def open(self) -> FrameSource:
        """Open the source; raise :class:`SourceError` with a readable message on failure."""
        if self._opened:
            return self
        try:
            self._open()
        except SourceError:
            self._safe_close()
            raise
        except Exception as exc:  # an SDK or OS error: normalise it for the caller
            self._safe_close()
            raise SourceError(f"{self.description}: cannot open: {exc}") from exc
        self._opened = True
        self._frame_index = 0
        log.info("opened source %s", self.description)
        return self

    def read(self, timeout: float | None = DEFAULT_READ_TIMEOUT_S) -> FrameBundle | None:
        """The next bundle, ``None`` on a stall; :class:`SourceEnded`/:class:`SourceError`."""
        if not self._opened:
            raise SourceError(f"{self.description}: read() before open()")
        try:
            bundle = self._read(timeout)
        except SourceError:
            raise
        except Exception as exc:
            raise SourceError(f"{self.description}: read failed: {exc}") from exc
        if bundle is None:
            return None
        bundle.frame_index = self._frame_index
        if not bundle.source:
            bundle.source = self.description
        self._frame_index += 1
        return bundle

    def close(self) -> None:
        if self._opened:
            self._safe_close()
            self._opened = False
            log.info("closed source %s", self.description)

    def _safe_close(self) -> None:
        try:
            self._close()
        except Exception:  # closing a broken device must not mask the original error
            log.warning("error while closing %s", self.description, exc_info=True)

    # -- protocol helpers --------------------------------------------------------------
    def __enter__(self) -> FrameSource:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[FrameBundle]:
        """Bundles until the source ends; stalls are skipped, errors propagate."""
        if not self._opened:
            self.open()
        while True:
            try:
                bundle = self.read()
            except SourceEnded:
                return
            if bundle is not None:
                yield bundle

    # -- to implement ------------------------------------------------------------------
    @abstractmethod
    def _open(self) -> None: ...

    @abstractmethod
    def _read(self, timeout: float | None) -> FrameBundle | None: ...

    @abstractmethod
    def _close(self) -> None: ...
