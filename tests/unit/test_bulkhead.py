"""Bulkhead: bounded concurrency, fail fast or a short bounded wait, never a queue."""

from __future__ import annotations

import asyncio

import pytest

from app.resilience.bulkhead import Bulkhead, BulkheadConfig, BulkheadRejection
from app.resilience.errors import BulkheadFull
from app.resilience.testing import FakeClock


async def never(_: float) -> None:
    """A sleep that never ends: only a released slot can wake the waiter."""
    await asyncio.Event().wait()


async def test_fails_fast_when_full() -> None:
    """With max_wait_s=0 a call beyond the limit is refused at once and reported."""
    clock = FakeClock()
    rejected: list[BulkheadRejection] = []
    config = BulkheadConfig(max_concurrent=2)
    bulkhead = Bulkhead("p", config, clock=clock, sleep=clock.sleep, on_reject=[rejected.append])
    await bulkhead.acquire()
    await bulkhead.acquire()
    assert (bulkhead.in_use, bulkhead.limit) == (2, 2)
    with pytest.raises(BulkheadFull) as info:
        await bulkhead.acquire()
    assert info.value.limit == 2
    assert rejected[0].in_use == 2 and rejected[0].waited_s == 0.0 and clock.sleeps == []
    bulkhead.release()
    await bulkhead.acquire()
    assert bulkhead.in_use == 2


async def test_bounded_wait_gives_up_after_max_wait() -> None:
    """A waiter is refused after max_wait_s (on the injected clock) and leaves the queue."""
    clock = FakeClock()
    rejected: list[BulkheadRejection] = []
    config = BulkheadConfig(max_concurrent=1, max_wait_s=0.5)
    bulkhead = Bulkhead("p", config, clock=clock, sleep=clock.sleep, on_reject=[rejected.append])
    await bulkhead.acquire()
    with pytest.raises(BulkheadFull):
        await bulkhead.acquire()
    assert clock.sleeps == [0.5]
    assert rejected[0].waited_s == pytest.approx(0.5)
    assert bulkhead.waiting == 0 and bulkhead.in_use == 1


async def test_waiter_gets_released_slot() -> None:
    """A waiting call takes over a slot the moment it is released."""
    bulkhead = Bulkhead("p", BulkheadConfig(max_concurrent=1, max_wait_s=5.0), sleep=never)
    await bulkhead.acquire()
    waiter = asyncio.create_task(bulkhead.acquire())
    await asyncio.sleep(0)
    assert bulkhead.waiting == 1
    bulkhead.release()
    await waiter
    assert bulkhead.in_use == 1 and bulkhead.waiting == 0


async def test_caller_wait_bound_caps_config() -> None:
    """The caller's bound (e.g. time left before its deadline) shortens the wait."""
    clock = FakeClock()
    config = BulkheadConfig(max_concurrent=1, max_wait_s=5.0)
    bulkhead = Bulkhead("p", config, clock=clock, sleep=clock.sleep)
    await bulkhead.acquire()
    with pytest.raises(BulkheadFull):
        await bulkhead.acquire(max_wait_s=0.2)
    assert clock.sleeps == [0.2]


async def test_waiters_are_bounded() -> None:
    """Beyond max_waiters, calls are refused at once instead of queueing."""
    config = BulkheadConfig(max_concurrent=1, max_wait_s=5.0, max_waiters=1)
    bulkhead = Bulkhead("p", config, sleep=never)
    await bulkhead.acquire()
    waiter = asyncio.create_task(bulkhead.acquire())
    await asyncio.sleep(0)
    with pytest.raises(BulkheadFull):
        await bulkhead.acquire()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert bulkhead.waiting == 0 and bulkhead.in_use == 1


async def test_cancelled_waiter_leaks_no_slot() -> None:
    """Cancelling a waiter removes it; later releases return the slot to the pool."""
    bulkhead = Bulkhead("p", BulkheadConfig(max_concurrent=1, max_wait_s=5.0), sleep=never)
    async with bulkhead.slot():
        waiter = asyncio.create_task(bulkhead.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    assert bulkhead.in_use == 0 and bulkhead.waiting == 0


def test_config_bounds_the_wait() -> None:
    """A long max_wait_s (a queue in disguise) is refused at construction."""
    with pytest.raises(ValueError):
        BulkheadConfig(max_wait_s=600.0)
