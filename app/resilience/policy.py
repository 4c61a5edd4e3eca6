"""Composes the resilience pieces around one upstream call.

`ResiliencePolicy.call(fn, deadline=...)` runs `fn(timeout_s)`, where `fn` makes one attempt
and `timeout_s` is the bound for that attempt. Layers, outermost first::

    bulkhead        one slot for the whole call, retries included; waits at most
                    min(bulkhead max_wait_s, time left) — else BulkheadFull
      retry loop    for attempt 1..max_attempts:
        breaker       a permit per attempt — else CircuitOpen (never retried here: the caller
                      may fall back); each attempt's outcome is recorded
        attempt       fn(timeout_s), bounded by asyncio.timeout(timeout_s) where
                      timeout_s = min(time left before the deadline, call_timeout_s);
                      None when neither is set. The bound firing raises AttemptTimedOut,
                      or DeadlineExceeded if it was the deadline that ran out.
        on failure    retry only if the error is retryable, attempts remain, the deadline
                      leaves more than the wait (server hint capped, else full-jitter
                      backoff), and the retry budget holds a token — in that order, so the
                      budget is only spent on retries that happen. Otherwise the error
                      is raised as is.

The deadline is the tighter of `deadline=` and the task's `current_deadline()`.

Every attempt, retry, breaker transition/rejection, bulkhead rejection and budget exhaustion
is reported to hooks as a frozen record; the hooks (metrics, events) are plain callables
supplied by the application, so this module imports no Prometheus.

Breaker, bulkhead and budget may each be given as a config (the policy builds it with its own
name and clock and wires it to `hooks`) or as an instance (shared, e.g. one bulkhead for every
model of a provider; whoever built it wires its hooks), or None to leave that layer out.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from app.resilience.breaker import (
    BreakerConfig,
    BreakerRejection,
    BreakerTransition,
    CircuitBreaker,
    Permit,
)
from app.resilience.budget import RetryBudget, RetryBudgetConfig
from app.resilience.bulkhead import Bulkhead, BulkheadConfig, BulkheadRejection
from app.resilience.errors import AttemptTimedOut, CircuitOpen, DeadlineExceeded, reason_of
from app.resilience.hooks import emit
from app.resilience.retry import RetryPolicy, is_retryable, may_retry, retry_wait
from app.resilience.timeouts import Clock, Deadline, current_deadline

__all__ = [
    "AttemptRecord",
    "BudgetExhausted",
    "ResilienceHooks",
    "ResiliencePolicy",
    "RetryRecord",
]

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]
Attempt = Callable[[float | None], Awaitable[T]]

_DEFAULT_RETRY = RetryPolicy()
_DEFAULT_BUDGET = RetryBudgetConfig()


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


@dataclass(frozen=True, slots=True)
class BudgetExhausted:
    name: str
    attempt: int
    reason: str
    error: str
    requests_in_window: int
    retries_in_window: int


@dataclass(slots=True)
class ResilienceHooks:
    on_attempt: list[Callable[[AttemptRecord], None]] = field(default_factory=list)
    on_retry: list[Callable[[RetryRecord], None]] = field(default_factory=list)
    on_breaker_transition: list[Callable[[BreakerTransition], None]] = field(default_factory=list)
    on_breaker_rejection: list[Callable[[BreakerRejection], None]] = field(default_factory=list)
    on_bulkhead_rejection: list[Callable[[BulkheadRejection], None]] = field(default_factory=list)
    on_budget_exhausted: list[Callable[[BudgetExhausted], None]] = field(default_factory=list)


class ResiliencePolicy:
    def __init__(
        self,
        name: str,
        *,
        retry: RetryPolicy = _DEFAULT_RETRY,
        breaker: CircuitBreaker | BreakerConfig | None = None,
        bulkhead: Bulkhead | BulkheadConfig | None = None,
        budget: RetryBudget | RetryBudgetConfig | None = _DEFAULT_BUDGET,
        call_timeout_s: float | None = None,
        hooks: ResilienceHooks | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.retry = retry
        self.call_timeout_s = call_timeout_s
        self.hooks = hooks or ResilienceHooks()
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()  # jitter, not cryptography
        self.breaker = self._build_breaker(breaker)
        self.bulkhead = self._build_bulkhead(bulkhead)
        self.budget = (
            RetryBudget(budget, clock=clock) if isinstance(budget, RetryBudgetConfig) else budget
        )

    async def call(self, fn: Attempt[T], *, deadline: Deadline | None = None) -> T:
        ambient = current_deadline()
        deadline = deadline.earliest(ambient) if deadline else ambient
        if self.bulkhead is None:
            return await self._attempts(fn, deadline)
        await self.bulkhead.acquire(max_wait_s=deadline.remaining() if deadline else None)
        try:
            return await self._attempts(fn, deadline)
        finally:
            self.bulkhead.release()

    # --- the retry loop ------------------------------------------------------------------

    async def _attempts(self, fn: Attempt[T], deadline: Deadline | None) -> T:
        attempt = 0
        last: Exception | None = None
        while True:
            attempt += 1
            remaining = deadline.remaining() if deadline else None
            if remaining is not None and remaining <= 0:
                raise DeadlineExceeded(
                    f"{self.name}: deadline reached before attempt {attempt}"
                ) from last
            timeout = self._attempt_timeout(remaining)
            permit = self._permit(last)
            if attempt == 1 and self.budget is not None:
                self.budget.deposit()
            started = self._clock()
            try:
                result = await self._attempt(fn, timeout, permit)
            except Exception as exc:
                self._emit_attempt(attempt, started, reason_of(exc), exc)
                if isinstance(exc, AttemptTimedOut) and timeout == remaining:
                    raise DeadlineExceeded(f"{self.name}: deadline reached in attempt") from exc
                wait = self._retry_wait(exc, attempt, deadline)
                if wait is None:
                    raise
                record = RetryRecord(self.name, attempt, wait, reason_of(exc), str(exc))
                emit(self.hooks.on_retry, record)
                last = exc
                await self._sleep(wait)
            else:
                self._emit_attempt(attempt, started, "success", None)
                return result

    def _attempt_timeout(self, remaining: float | None) -> float | None:
        """min(time left, call_timeout_s), or None when neither bounds the attempt."""
        if self.call_timeout_s is None:
            return remaining
        return self.call_timeout_s if remaining is None else min(remaining, self.call_timeout_s)

    def _permit(self, last: Exception | None) -> Permit | None:
        if self.breaker is None:
            return None
        try:
            return self.breaker.acquire()
        except CircuitOpen as exc:  # not retried here: the caller may fall back
            raise exc from last

    async def _attempt(self, fn: Attempt[T], bound_s: float | None, permit: Permit | None) -> T:
        """One bounded call of `fn`, its outcome recorded on the breaker permit."""
        try:
            result = await self._bounded(fn, bound_s)
        except BaseException as exc:
            if permit is not None and self.breaker is not None:
                if isinstance(exc, Exception):
                    self.breaker.record(permit, exc)
                else:  # cancelled: says nothing about the upstream
                    self.breaker.release(permit)
            raise
        if permit is not None and self.breaker is not None:
            self.breaker.record(permit)
        return result

    async def _bounded(self, fn: Attempt[T], bound_s: float | None) -> T:
        if bound_s is None:
            return await fn(None)
        bound = asyncio.timeout(bound_s)
        try:
            async with bound:
                return await fn(bound_s)
        except TimeoutError as exc:
            if bound.expired():
                raise AttemptTimedOut(self.name, bound_s) from exc
            raise

    def _retry_wait(self, exc: Exception, attempt: int, deadline: Deadline | None) -> float | None:
        """The wait before retrying `exc`, or None when it must not be retried."""
        if not is_retryable(exc):
            return None
        wait = retry_wait(self.retry, exc, attempt, self._rng)
        if not may_retry(self.retry, attempt, wait, deadline.remaining() if deadline else None):
            return None
        if self.budget is not None and not self.budget.try_withdraw():
            spent = self.budget.snapshot()
            emit(
                self.hooks.on_budget_exhausted,
                BudgetExhausted(
                    self.name, attempt, reason_of(exc), str(exc), spent.requests, spent.retries
                ),
            )
            return None
        return wait

    # --- wiring --------------------------------------------------------------------------

    def _build_breaker(self, spec: CircuitBreaker | BreakerConfig | None) -> CircuitBreaker | None:
        if not isinstance(spec, BreakerConfig):
            return spec
        return CircuitBreaker(
            self.name,
            spec,
            clock=self._clock,
            on_transition=[lambda r: emit(self.hooks.on_breaker_transition, r)],
            on_reject=[lambda r: emit(self.hooks.on_breaker_rejection, r)],
        )

    def _build_bulkhead(self, spec: Bulkhead | BulkheadConfig | None) -> Bulkhead | None:
        if not isinstance(spec, BulkheadConfig):
            return spec
        return Bulkhead(
            self.name,
            spec,
            clock=self._clock,
            sleep=self._sleep,
            on_reject=[lambda r: emit(self.hooks.on_bulkhead_rejection, r)],
        )

    def _emit_attempt(
        self, attempt: int, started: float, outcome: str, exc: BaseException | None
    ) -> None:
        if not self.hooks.on_attempt:
            return
        record = AttemptRecord(
            self.name, attempt, self._clock() - started, outcome, str(exc) if exc else None
        )
        emit(self.hooks.on_attempt, record)
