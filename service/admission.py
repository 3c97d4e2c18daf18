"""Admission control: at most N analyses at once and a bounded, time-limited queue.

Overload is answered (503 with Retry-After) instead of piling requests into an
unbounded queue whose latency nobody wants. Lives on the event loop: ``acquire`` is
called before a request body is read, so rejected requests cost almost nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from service.errors import OverloadedError


class AdmissionControl:
    """``max_concurrent`` slots plus ``max_queue`` waiters for at most ``timeout_s``."""

    def __init__(
        self,
        max_concurrent: int,
        max_queue: int,
        timeout_s: float,
        retry_after_s: int = 1,
        on_change: Callable[[int, int], None] | None = None,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self._sem = asyncio.Semaphore(max_concurrent)
        self.active = 0
        self.waiting = 0
        self._on_change = on_change

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.active, self.waiting)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one analysis slot; raise :class:`OverloadedError` when none is to be had."""
        if self._sem.locked() or self.waiting:
            if self.waiting >= self.max_queue:
                raise OverloadedError(
                    f"{self.active} requests in progress and {self.waiting} waiting "
                    f"(limits {self.max_concurrent} and {self.max_queue}); retry later",
                    retry_after_s=self.retry_after_s,
                )
            self.waiting += 1
            self._changed()
            try:
                await asyncio.wait_for(self._sem.acquire(), timeout=self.timeout_s)
            except asyncio.TimeoutError:
                raise OverloadedError(
                    f"no analysis slot became free within {self.timeout_s:g} s; retry later",
                    retry_after_s=self.retry_after_s,
                ) from None
            finally:
                self.waiting -= 1
        else:
            await self._sem.acquire()
        self.active += 1
        self._changed()
        try:
            yield
        finally:
            self.active -= 1
            self._sem.release()
            self._changed()
