"""Composes the resilience pieces around one upstream call.

`ResiliencePolicy.call(fn)` runs `fn(timeout_s)` — where `timeout_s` is the time the current
deadline leaves for this attempt — retrying retryable failures per `RetryPolicy`. Every
attempt and every retry is reported to hooks as a frozen record; the hooks (metrics, events)
are plain callables supplied by the application, so this module imports no Prometheus.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from app.resilience.errors import DeadlineExceeded, UpstreamFailure
from app.resilience.retry import RetryPolicy, is_retryable, may_retry, retry_wait
from app.resilience.timeouts import Clock, Deadline, current_deadline

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    name: str
    attempt: int
    duration_s: float
    outcome: str  # "success" or the failure's reason
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RetryRecord:
    name: str
    attempt: int
    wait_s: float
    reason: str
    error: str


@dataclass(slots=True)
class ResilienceHooks:
    on_attempt: list[Callable[[AttemptRecord], None]] = field(default_factory=list)
    on_retry: list[Callable[[RetryRecord], None]] = field(default_factory=list)


Sleep = Callable[[float], Awaitable[None]]


def _reason(exc: BaseException) -> str:
    if isinstance(exc, UpstreamFailure):
        return exc.reason
    if isinstance(exc, TimeoutError):
        return "timeout"
    return "error"


class ResiliencePolicy:
    def __init__(
        self,
        name: str,
        *,
        retry: RetryPolicy,
        hooks: ResilienceHooks | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.retry = retry
        self.hooks = hooks or ResilienceHooks()
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    async def call(
        self, fn: Callable[[float | None], Awaitable[T]], *, deadline: Deadline | None = None
    ) -> T:
        deadline = deadline or current_deadline()
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline.remaining() if deadline else None
            if remaining is not None and remaining <= 0:
                raise DeadlineExceeded(f"{self.name}: deadline reached before attempt {attempt}")
            started = self._clock()
            try:
                result = await fn(remaining)
            except Exception as exc:
                self._emit_attempt(attempt, started, _reason(exc), exc)
                if not is_retryable(exc):
                    raise
                wait = retry_wait(self.retry, exc, attempt, self._rng)
                remaining = deadline.remaining() if deadline else None
                if not may_retry(self.retry, attempt, wait, remaining):
                    raise
                record = RetryRecord(self.name, attempt, wait, _reason(exc), str(exc))
                for hook in self.hooks.on_retry:
                    hook(record)
                await self._sleep(wait)
            else:
                self._emit_attempt(attempt, started, "success", None)
                return result

    def _emit_attempt(
        self, attempt: int, started: float, outcome: str, exc: BaseException | None
    ) -> None:
        record = AttemptRecord(
            self.name, attempt, self._clock() - started, outcome, str(exc) if exc else None
        )
        for hook in self.hooks.on_attempt:
            hook(record)
