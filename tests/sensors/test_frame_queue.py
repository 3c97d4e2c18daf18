"""The bounded frame queue: drop-oldest for cameras, back-pressure for files."""

from __future__ import annotations

import threading
import time

import pytest

from sensors.frame_queue import DropOldestQueue, QueueClosed


def test_full_queue_drops_the_oldest_and_counts() -> None:
    q: DropOldestQueue[int] = DropOldestQueue(3)
    dropped = [q.put(i) for i in range(5)]
    assert dropped == [None, None, None, 0, 1]
    assert q.dropped == 2 and q.put_count == 5 and len(q) == 3
    assert [q.get(0) for _ in range(3)] == [2, 3, 4]
    assert q.get(timeout=0.01) is None


def test_put_wait_blocks_until_a_consumer_makes_room() -> None:
    q: DropOldestQueue[int] = DropOldestQueue(1)
    q.put(0)
    assert q.put_wait(1, timeout=0.05) is False
    threading.Timer(0.05, q.get).start()
    t0 = time.monotonic()
    assert q.put_wait(1, timeout=2.0) is True
    assert time.monotonic() - t0 < 1.5
    assert q.dropped == 0 and q.get(0) == 1


def test_close_drains_then_raises() -> None:
    q: DropOldestQueue[str] = DropOldestQueue(2)
    q.put("a")
    q.close()
    with pytest.raises(QueueClosed):
        q.put("b")
    assert q.get(0) == "a"
    with pytest.raises(QueueClosed):
        q.get(0)


def test_close_wakes_a_waiting_consumer() -> None:
    q: DropOldestQueue[int] = DropOldestQueue(1)
    threading.Timer(0.05, q.close).start()
    with pytest.raises(QueueClosed):
        q.get(timeout=5)


def test_memory_is_bounded_under_a_fast_producer() -> None:
    q: DropOldestQueue[bytes] = DropOldestQueue(4)
    for _ in range(10_000):
        q.put(b"x" * 10)
    assert len(q) == 4 and q.dropped == 9_996


def test_maxsize_must_be_positive() -> None:
    with pytest.raises(ValueError):
        DropOldestQueue(0)
