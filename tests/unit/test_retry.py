"""Retry decisions and the retry budget, on a fake clock."""

from __future__ import annotations

import random
from typing import Any

import pytest

from app.resilience.budget import RetryBudget, RetryBudgetConfig
from app.resilience.errors import UpstreamFailure
from app.resilience.policy import BudgetExhausted, ResilienceHooks, ResiliencePolicy, RetryRecord
from app.resilience.retry import RetryPolicy, backoff_delay, is_retryable, may_retry, retry_wait
from app.resilience.testing import FakeClock
from app.resilience.timeouts import Deadline


def failure(retry_after_s: float | None = None, retryable: bool = True) -> UpstreamFailure:
    return UpstreamFailure("boom", retryable=retryable, reason="x", retry_after_s=retry_after_s)


class Flaky:
    """An attempt function failing `failures` times, then returning "ok"."""

    def __init__(self, failures: int, error: UpstreamFailure | None = None) -> None:
        self.failures = failures
        self.error = error or failure()
        self.calls = 0

    async def __call__(self, timeout_s: float | None) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


def policy(clock: FakeClock, **kwargs: Any) -> ResiliencePolicy:
    return ResiliencePolicy(
        "p",
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(7),
        **kwargs,
    )


def test_only_retryable_upstream_failures_are_retryable() -> None:
    """Retryable UpstreamFailures are retried; client errors and foreign exceptions are not."""
    assert is_retryable(failure())
    assert not is_retryable(failure(retryable=False))
    assert not is_retryable(ValueError())


def test_backoff_is_full_jitter_under_a_doubling_cap() -> None:
    """Backoff for retry n lies in [0, min(max, initial * 2**(n-1))]."""
    rules = RetryPolicy(initial_backoff_s=0.5, max_backoff_s=4.0)
    rng = random.Random(1)
    for n, cap in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)]:
        waits = [backoff_delay(rules, n, rng) for _ in range(200)]
        assert min(waits) >= 0.0 and max(waits) <= cap
        assert max(waits) > cap * 0.8  # spread over the whole range


def test_server_hint_replaces_backoff_and_is_capped() -> None:
    """A retry-after hint is used as the wait, capped at max_server_wait_s."""
    rules = RetryPolicy(max_server_wait_s=10.0)
    rng = random.Random(1)
    assert retry_wait(rules, failure(retry_after_s=3.0), 1, rng) == 3.0
    assert retry_wait(rules, failure(retry_after_s=120.0), 1, rng) == 10.0


def test_may_retry_respects_attempts_and_deadline() -> None:
    """No retry once attempts are spent or when the time left cannot hold the wait."""
    rules = RetryPolicy(max_attempts=3)
    assert may_retry(rules, 2, 1.0, None)
    assert not may_retry(rules, 3, 1.0, None)
    assert not may_retry(rules, 1, 5.0, 5.0)
    assert may_retry(rules, 1, 4.9, 5.0)


async def test_policy_honours_capped_hint() -> None:
    """The policy sleeps exactly the server's hint, capped, before retrying."""
    clock = FakeClock()
    retries: list[RetryRecord] = []
    p = policy(
        clock,
        retry=RetryPolicy(max_server_wait_s=5.0),
        hooks=ResilienceHooks(on_retry=[retries.append]),
    )
    fn = Flaky(2, failure(retry_after_s=30.0))
    assert await p.call(fn) == "ok"
    assert clock.sleeps == [5.0, 5.0]
    assert [r.attempt for r in retries] == [1, 2]


async def test_policy_stops_at_max_attempts() -> None:
    """After max_attempts failures the last error is raised."""
    clock = FakeClock()
    fn = Flaky(10)
    with pytest.raises(UpstreamFailure):
        await policy(clock, retry=RetryPolicy(max_attempts=4)).call(fn)
    assert fn.calls == 4 and len(clock.sleeps) == 3


async def test_policy_stops_when_deadline_cannot_hold_wait() -> None:
    """A hinted wait longer than the time left ends the retries at once."""
    clock = FakeClock()
    fn = Flaky(10, failure(retry_after_s=8.0))
    with pytest.raises(UpstreamFailure):
        await policy(clock).call(fn, deadline=Deadline.after(5.0, clock))
    assert fn.calls == 1 and clock.sleeps == []


def test_budget_floor_and_ratio() -> None:
    """With no traffic the floor allows min_retries_per_s * window_s; each request adds ratio."""
    clock = FakeClock()
    budget = RetryBudget(
        RetryBudgetConfig(ratio=0.2, window_s=10.0, min_retries_per_s=0.5), clock=clock
    )
    assert sum(budget.try_withdraw() for _ in range(10)) == 5
    for _ in range(10):
        budget.deposit()
    assert budget.try_withdraw() and budget.try_withdraw()
    assert not budget.try_withdraw()
    snap = budget.snapshot()
    assert (snap.requests, snap.retries) == (10, 7)


def test_budget_window_forgets_old_traffic() -> None:
    """Requests and retries older than window_s no longer count."""
    clock = FakeClock()
    budget = RetryBudget(RetryBudgetConfig(min_retries_per_s=0.1, window_s=10.0), clock=clock)
    assert budget.try_withdraw()
    assert not budget.try_withdraw()
    clock.advance(10.0)
    assert budget.snapshot().retries == 0
    assert budget.try_withdraw()


async def test_budget_bounds_amplification_under_full_outage() -> None:
    """Against an always-failing upstream, attempts per call stay <= 1 + ratio + a small floor."""
    clock = FakeClock()
    exhausted: list[BudgetExhausted] = []
    config = RetryBudgetConfig()
    p = policy(
        clock,
        retry=RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.05),
        budget=config,
        hooks=ResilienceHooks(on_budget_exhausted=[exhausted.append]),
    )
    fn = Flaky(10**9)
    calls = 1000
    started = clock.now
    for _ in range(calls):
        with pytest.raises(UpstreamFailure):
            await p.call(fn)
        clock.advance(0.01)  # 100 calls/s
    elapsed = clock.now - started
    ratio = fn.calls / calls
    floor = config.min_retries_per_s * (elapsed + config.window_s) / calls
    print(f"\nattempts/call under full outage: {ratio:.3f} (bound {1 + config.ratio + floor:.3f})")
    assert ratio <= 1 + config.ratio + floor
    assert ratio > 1.1  # the budget still lets retries through
    assert exhausted and exhausted[0].reason == "x"


async def test_without_budget_retries_multiply_the_outage() -> None:
    """Control: with no budget the same outage costs max_attempts attempts per call."""
    clock = FakeClock()
    p = policy(clock, retry=RetryPolicy(max_attempts=3, initial_backoff_s=0.01), budget=None)
    fn = Flaky(10**9)
    for _ in range(100):
        with pytest.raises(UpstreamFailure):
            await p.call(fn)
    assert fn.calls == 300
