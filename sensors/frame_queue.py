"""A bounded frame queue between capture and its consumers.

A camera does not wait for a slow consumer, so ``put`` never blocks the producer: when
the queue is full the **oldest** item is dropped (the consumer always gets the freshest
frames) and the drop is counted. A file can wait, so ``put_wait`` blocks for room instead
(back-pressure, nothing lost). Memory is bounded by ``maxsize`` items either way.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class QueueClosed(Exception):  # noqa: N818
    """``get`` on a closed, drained queue."""


class DropOldestQueue(Generic[T]):
    """Thread-safe bounded FIFO whose ``put`` never blocks: full → drop oldest, count it."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {maxsize}")
        self.maxsize = maxsize
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.put_count = 0
        self.dropped = 0

    def put(self, item: T) -> T | None:
        """Enqueue ``item``; return the dropped oldest item when the queue was full."""
        with self._cond:
            if self._closed:
                raise QueueClosed("put on a closed queue")
            dropped = None
            if len(self._items) >= self.maxsize:
                dropped = self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self.put_count += 1
            self._cond.notify_all()
            return dropped

    def put_wait(self, item: T, timeout: float | None = None) -> bool:
        """Enqueue ``item`` once there is room (back-pressure); False after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while len(self._items) >= self.maxsize:
                if self._closed:
                    raise QueueClosed("put on a closed queue")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            if self._closed:
                raise QueueClosed("put on a closed queue")
            self._items.append(item)
            self.put_count += 1
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None) -> T | None:
        """The oldest item; ``None`` after ``timeout`` seconds; :class:`QueueClosed` at the end."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items:
                if self._closed:
                    raise QueueClosed("queue closed")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            item = self._items.popleft()
            self._cond.notify_all()  # a producer may be waiting for room
            return item

    def close(self) -> None:
        """No more puts; consumers drain what is left, then get :class:`QueueClosed`."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
