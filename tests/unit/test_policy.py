"""ResiliencePolicy: bulkhead -> breaker -> bounded attempt -> retry, and its hooks."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from app.resilience.breaker import BreakerConfig, BreakerState, BreakerTransition, CircuitBreaker
from app.resilience.bulkhead import Bulkhead, BulkheadConfig, BulkheadRejection
from app.resilience.errors import (
    AttemptTimedOut,
    BulkheadFull,
    CircuitOpen,
    DeadlineExceeded,
    UpstreamFailure,
)
from app.resilience.policy import AttemptRecord, ResilienceHooks, ResiliencePolicy
from app.resilience.retry import RetryPolicy
from app.resilience.testing import FakeClock
from app.resilience.timeouts import Deadline, deadline_scope

RETRYABLE = UpstreamFailure("503", retryable=True, reason="server_error")
FATAL = UpstreamFailure("401", retryable=False, reason="authentication")


def policy(clock: FakeClock, **kwargs: Any) -> ResiliencePolicy:
    return ResiliencePolicy(
        "p",
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(3),
        **kwargs,
    )


def breaker_config() -> BreakerConfig:
    return BreakerConfig(window_size=4, minimum_calls=4, open_wait_s=30.0, half_open_max_calls=1)


async def ok(timeout_s: float | None) -> str:
    return "ok"


async def always_fails(timeout_s: float | None) -> str:
    raise RETRYABLE


async def test_success_reports_one_attempt() -> None:
    """A successful call returns the value and reports one "success" attempt."""
    clock = FakeClock()
    attempts: list[AttemptRecord] = []
    p = policy(clock, hooks=ResilienceHooks(on_attempt=[attempts.append]))
    assert await p.call(ok) == "ok"
    assert [(a.attempt, a.outcome) for a in attempts] == [(1, "success")]


async def test_non_retryable_is_raised_at_once() -> None:
    """A non-retryable failure is raised after one attempt."""
    clock = FakeClock()
    calls = 0

    async def fn(timeout_s: float | None) -> str:
        nonlocal calls
        calls += 1
        raise FATAL

    with pytest.raises(UpstreamFailure) as info:
        await policy(clock).call(fn)
    assert info.value is FATAL and calls == 1


async def test_attempt_timeout_is_min_of_deadline_and_call_timeout() -> None:
    """Each attempt gets min(time left, call_timeout_s), shrinking as retries spend the deadline."""
    clock = FakeClock()
    seen: list[float | None] = []

    async def fn(timeout_s: float | None) -> str:
        seen.append(timeout_s)
        clock.advance(4.0)
        if len(seen) < 3:
            raise UpstreamFailure("429", retryable=True, reason="rate_limited", retry_after_s=1.0)
        return "ok"

    p = policy(clock, call_timeout_s=6.0)
    with deadline_scope(Deadline.after(15.0, clock)):
        assert await p.call(fn) == "ok"
    assert seen == [6.0, 6.0, pytest.approx(5.0)]  # 15 s left, then 10 (call cap 6), then 5
    assert await p.call(ok) == "ok"


async def test_explicit_and_ambient_deadline_tighter_wins() -> None:
    """The attempt bound uses the tighter of deadline= and the task's current deadline."""
    clock = FakeClock()
    seen: list[float | None] = []

    async def fn(timeout_s: float | None) -> str:
        seen.append(timeout_s)
        return "ok"

    p = policy(clock)
    with deadline_scope(Deadline.after(3.0, clock)):
        await p.call(fn, deadline=Deadline.after(10.0, clock))
    await p.call(fn)
    assert seen == [3.0, None]


async def test_expired_deadline_raises_before_calling() -> None:
    """No attempt starts once the deadline has passed."""
    clock = FakeClock()
    deadline = Deadline.after(1.0, clock)
    clock.advance(2.0)
    with pytest.raises(DeadlineExceeded):
        await policy(clock).call(ok, deadline=deadline)


async def test_call_timeout_is_enforced() -> None:
    """An attempt that ignores its bound is cut off and raised as retryable AttemptTimedOut."""
    clock = FakeClock()
    calls = 0

    async def hangs(timeout_s: float | None) -> str:
        nonlocal calls
        calls += 1
        await asyncio.Event().wait()
        return "never"

    p = policy(clock, call_timeout_s=0.01, retry=RetryPolicy(max_attempts=2))
    with pytest.raises(AttemptTimedOut) as info:
        await p.call(hangs)
    assert info.value.retryable and calls == 2


async def test_deadline_bound_timeout_is_deadline_exceeded() -> None:
    """When the deadline (not the call timeout) cuts an attempt off, DeadlineExceeded is raised."""

    async def hangs(timeout_s: float | None) -> str:
        await asyncio.Event().wait()
        return "never"

    p = ResiliencePolicy("p", call_timeout_s=60.0)
    with pytest.raises(DeadlineExceeded) as info:
        await p.call(hangs, deadline=Deadline.after(0.01))
    assert isinstance(info.value.__cause__, AttemptTimedOut)


async def test_breaker_counts_attempts_and_open_is_not_retried() -> None:
    """Retried attempts feed the breaker; once it opens, CircuitOpen ends the call unretried."""
    clock = FakeClock()
    transitions: list[BreakerTransition] = []
    p = policy(
        clock,
        retry=RetryPolicy(max_attempts=10, initial_backoff_s=0.01),
        breaker=breaker_config(),
        hooks=ResilienceHooks(on_breaker_transition=[transitions.append]),
        budget=None,
    )
    calls = 0

    async def fn(timeout_s: float | None) -> str:
        nonlocal calls
        calls += 1
        raise RETRYABLE

    with pytest.raises(CircuitOpen) as info:
        await p.call(fn)
    assert calls == 4  # the window filled, the breaker opened, the 5th attempt was refused
    assert info.value.__cause__ is RETRYABLE
    assert transitions[-1].to_state is BreakerState.OPEN
    assert p.breaker is not None and p.breaker.state is BreakerState.OPEN


async def test_half_open_probe_through_policy_closes() -> None:
    """After the open wait, a successful call through the policy closes the breaker."""
    clock = FakeClock()
    p = policy(clock, retry=RetryPolicy(max_attempts=1), breaker=breaker_config())
    for _ in range(4):
        with pytest.raises(UpstreamFailure):
            await p.call(always_fails)
    with pytest.raises(CircuitOpen):
        await p.call(ok)
    clock.advance(30.0)
    assert await p.call(ok) == "ok"
    assert p.breaker is not None and p.breaker.state is BreakerState.CLOSED


async def test_non_retryable_errors_leave_breaker_closed() -> None:
    """Client errors through the policy never open its breaker."""
    clock = FakeClock()

    async def fn(timeout_s: float | None) -> str:
        raise FATAL

    p = policy(clock, breaker=breaker_config())
    for _ in range(20):
        with pytest.raises(UpstreamFailure):
            await p.call(fn)
    assert p.breaker is not None and p.breaker.state is BreakerState.CLOSED


async def test_cancelled_probe_frees_its_slot() -> None:
    """Cancelling a call mid-probe hands the probe slot back instead of wedging HALF_OPEN."""
    clock = FakeClock()
    breaker = CircuitBreaker("b", breaker_config(), clock=clock)
    breaker.force(BreakerState.HALF_OPEN)
    p = policy(clock, breaker=breaker)
    started = asyncio.Event()

    async def hangs(timeout_s: float | None) -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    task = asyncio.create_task(p.call(hangs))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await p.call(ok) == "ok"
    assert breaker.state is BreakerState.CLOSED


async def test_bulkhead_held_across_retries_and_released() -> None:
    """The bulkhead slot is held for the whole call and freed afterwards, even on failure."""
    clock = FakeClock()
    rejections: list[BulkheadRejection] = []
    p = policy(
        clock,
        bulkhead=BulkheadConfig(max_concurrent=1),
        hooks=ResilienceHooks(on_bulkhead_rejection=[rejections.append]),
    )
    gate = asyncio.Event()

    async def slow(timeout_s: float | None) -> str:
        await gate.wait()
        return "ok"

    first = asyncio.create_task(p.call(slow))
    await asyncio.sleep(0)
    with pytest.raises(BulkheadFull):
        await p.call(ok)
    assert len(rejections) == 1
    gate.set()
    assert await first == "ok"
    with pytest.raises(UpstreamFailure):
        await p.call(always_fails)
    assert p.bulkhead is not None and p.bulkhead.in_use == 0


async def test_shared_instances_are_used_as_given() -> None:
    """A breaker/bulkhead instance passed in is shared, not copied."""
    clock = FakeClock()
    bulkhead = Bulkhead("provider", BulkheadConfig(max_concurrent=2), clock=clock)
    a = policy(clock, bulkhead=bulkhead)
    b = policy(clock, bulkhead=bulkhead)
    assert a.bulkhead is b.bulkhead is bulkhead


async def test_failing_hook_does_not_break_the_call() -> None:
    """A hook that raises is logged and skipped; the call still succeeds."""
    clock = FakeClock()

    def broken(record: AttemptRecord) -> None:
        raise RuntimeError("metrics down")

    p = policy(clock, hooks=ResilienceHooks(on_attempt=[broken]))
    assert await p.call(ok) == "ok"
