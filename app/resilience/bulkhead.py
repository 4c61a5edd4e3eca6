"""A bulkhead: at most `max_concurrent` calls in flight to one upstream.

When every slot is taken a call either fails fast with `BulkheadFull` (`max_wait_s = 0`, the
default) or waits for a slot for at most `min(max_wait_s, the caller's max_wait_s)` seconds.
At most `max_waiters` calls wait at once; any more are refused immediately, so there is never
an unbounded queue. Waiters are served first come, first served: a released slot is handed
straight to the oldest waiter, so a newcomer cannot overtake it.

Not thread-safe: use it from one event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import NoReturn

from app.resilience.errors import BulkheadFull
from app.resilience.hooks import emit
from app.resilience.timeouts import Clock

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class BulkheadConfig:
    max_concurrent: int = 10
    """Calls allowed in flight at once."""
    max_wait_s: float = 0.0
    """Longest wait for a slot, in seconds; 0 fails fast. At most 60 s (keep it small)."""
    max_waiters: int = 32
    """Calls allowed to wait at once; more are refused at once."""

    def __post_init__(self) -> None:
        if self.max_concurrent < 1 or self.max_waiters < 0:
            raise ValueError("max_concurrent must be >= 1 and max_waiters >= 0")
        if not 0.0 <= self.max_wait_s <= 60.0:
            raise ValueError("max_wait_s must be within [0, 60] seconds")


@dataclass(frozen=True, slots=True)
class BulkheadRejection:
    name: str
    limit: int
    in_use: int
    waiting: int
    waited_s: float
    at: float


class Bulkhead:
    def __init__(
        self,
        name: str,
        config: BulkheadConfig | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        on_reject: Iterable[Callable[[BulkheadRejection], None]] = (),
    ) -> None:
        self.name = name
        self.config = config or BulkheadConfig()
        self.on_reject = list(on_reject)
        self._clock = clock
        self._sleep = sleep
        self._in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def limit(self) -> int:
        return self.config.max_concurrent

    @property
    def in_use(self) -> int:
        return self._in_use

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self, *, max_wait_s: float | None = None) -> None:
        """Take a slot, waiting at most `min(config.max_wait_s, max_wait_s)`; else BulkheadFull."""
        if self._in_use < self.config.max_concurrent and not self._waiters:
            self._in_use += 1
            return
        wait = (
            self.config.max_wait_s
            if max_wait_s is None
            else min(self.config.max_wait_s, max_wait_s)
        )
        started = self._clock()
        if wait <= 0 or len(self._waiters) >= self.config.max_waiters:
            self._reject(started)
        if not await self._wait_for_slot(wait):
            self._reject(started)

    def release(self) -> None:
        """Give a slot back, handing it to the oldest waiter if there is one."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot moves to the waiter; in_use is unchanged
                return
        self._in_use -= 1

    @contextlib.asynccontextmanager
    async def slot(self, *, max_wait_s: float | None = None) -> AsyncIterator[None]:
        await self.acquire(max_wait_s=max_wait_s)
        try:
            yield
        finally:
            self.release()

    async def _wait_for_slot(self, wait_s: float) -> bool:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        timer = asyncio.ensure_future(self._sleep(wait_s))
        try:
            await asyncio.wait((waiter, timer), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            self._abandon(waiter)
            raise
        finally:
            timer.cancel()
        if waiter.done() and not waiter.cancelled():
            return True
        self._abandon(waiter)
        return False

    def _abandon(self, waiter: asyncio.Future[None]) -> None:
        if waiter.done() and not waiter.cancelled():
            self.release()  # a slot was handed over just as we gave up: pass it on
            return
        waiter.cancel()
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)

    def _reject(self, started: float) -> NoReturn:
        now = self._clock()
        record = BulkheadRejection(
            self.name, self.limit, self._in_use, len(self._waiters), now - started, now
        )
        emit(self.on_reject, record)
        raise BulkheadFull(self.name, self.limit)
