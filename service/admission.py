"""Admission control: at most N analyses at once and a bounded, time-limited queue.

Overload is answered (503 with Retry-After) instead of piling requests into a queue
whose latency nobody wants. Lives on the event loop. ``slot`` is entered *after* the
request body has been read (the body has its own deadline, see
:mod:`service.api.middleware`), so a slow upload never holds a slot.

The wait is bounded in time as well as in places: the admission keeps a moving average
of how long a request holds its slot (the analysis time) and, with ``wait_ratio`` set,
sheds a request at once when its expected wait — the requests ahead of it times the
analysis time, over the number of slots — exceeds ``wait_ratio`` × the analysis time,
and gives up on one that has waited that long. An accepted request therefore waits at
most a few analysis times, whatever the offered load.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from service.errors import OverloadedError

#: Weight of the newest hold time in the moving average of the analysis time.
EWMA_ALPHA = 0.2


class AdmissionControl:
    """``max_concurrent`` slots plus ``max_queue`` waiters for at most ``timeout_s``."""

    def __init__(
        self,
        max_concurrent: int,
        max_queue: int,
        timeout_s: float,
        retry_after_s: int = 1,
        on_change: Callable[[int, int], None] | None = None,
        *,
        wait_ratio: float = 0.0,
        on_shed: Callable[[str], None] | None = None,
        on_admit: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self.wait_ratio = wait_ratio
        self._sem = asyncio.Semaphore(max_concurrent)
        self.active = 0
        self.waiting = 0
        #: Moving average of the slot hold time (s); None until one request has finished.
        self.analysis_s: float | None = None
        self._on_change = on_change
        self._on_shed = on_shed
        self._on_admit = on_admit
        self._clock = clock

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.active, self.waiting)

    def wait_budget(self) -> float:
        """Longest a request may wait for a slot now (seconds)."""
        if self.wait_ratio > 0 and self.analysis_s is not None:
            return min(self.timeout_s, self.wait_ratio * self.analysis_s)
        return self.timeout_s

    def expected_wait(self) -> float | None:
        """Expected wait of a request arriving now (None before any analysis finished)."""
        if self.analysis_s is None:
            return None
        return (self.waiting + 1) * self.analysis_s / self.max_concurrent

    def _shed(self, reason: str, detail: str) -> OverloadedError:
        if self._on_shed is not None:
            self._on_shed(reason)
        return OverloadedError(detail, retry_after_s=self.retry_after_s)

    def _refuse_on_arrival(self) -> None:
        if not (self._sem.locked() or self.waiting):
            return
        if self.waiting >= self.max_queue:
            raise self._shed(
                "queue_full",
                f"{self.active} requests in progress and {self.waiting} waiting "
                f"(limits {self.max_concurrent} and {self.max_queue}); retry later",
            )
        budget = self.wait_budget()
        expected = self.expected_wait()
        if self.wait_ratio > 0 and expected is not None and expected > budget:
            raise self._shed(
                "wait_budget",
                f"{self.active} requests in progress and {self.waiting} waiting: the "
                f"expected wait ({expected:.2f} s) is over the budget ({budget:.2f} s); "
                "retry later",
            )

    def check(self) -> None:
        """Refuse now what :meth:`slot` would refuse on arrival, before the body is read: a
        request that cannot be served costs no upload parsing. Takes nothing, so a slow
        body that passed it holds nothing either; :meth:`slot` checks again."""
        self._refuse_on_arrival()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one analysis slot; raise :class:`OverloadedError` when none is to be had."""
        arrived = self._clock()
        if self._sem.locked() or self.waiting:
            self._refuse_on_arrival()
            budget = self.wait_budget()
            self.waiting += 1
            self._changed()
            try:
                await asyncio.wait_for(self._sem.acquire(), timeout=budget)
            except asyncio.TimeoutError:
                raise self._shed(
                    "wait_timeout",
                    f"no analysis slot became free within {budget:.2f} s; retry later",
                ) from None
            finally:
                self.waiting -= 1
        else:
            await self._sem.acquire()
        start = self._clock()
        if self._on_admit is not None:
            self._on_admit(start - arrived)
        self.active += 1
        self._changed()
        try:
            yield
        finally:
            held = self._clock() - start
            self.analysis_s = (
                held
                if self.analysis_s is None
                else (1 - EWMA_ALPHA) * self.analysis_s + EWMA_ALPHA * held
            )
            self.active -= 1
            self._sem.release()
            self._changed()
