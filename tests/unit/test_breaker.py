"""Circuit breaker: Resilience4j semantics on a fake clock."""

from __future__ import annotations

import pytest

from app.resilience.breaker import (
    BreakerConfig,
    BreakerRejection,
    BreakerState,
    BreakerTransition,
    CircuitBreaker,
)
from app.resilience.errors import CircuitOpen, UpstreamFailure
from app.resilience.testing import FakeClock

FAIL = UpstreamFailure("503", retryable=True, reason="server_error")
BAD_REQUEST = UpstreamFailure("400", retryable=False, reason="bad_request")


def make(clock: FakeClock, **overrides: float) -> tuple[CircuitBreaker, list[BreakerTransition]]:
    settings: dict[str, float] = {
        "window_size": 10,
        "minimum_calls": 5,
        "failure_rate_threshold": 50.0,
        "slow_call_duration_s": 2.0,
        "slow_call_rate_threshold": 50.0,
        "open_wait_s": 30.0,
        "half_open_max_calls": 2,
        "probe_timeout_s": 60.0,
    } | overrides
    config = BreakerConfig(**settings)  # type: ignore[arg-type]
    seen: list[BreakerTransition] = []
    return CircuitBreaker("p", config, clock=clock, on_transition=[seen.append]), seen


def outcome(breaker: CircuitBreaker, error: BaseException | None = None) -> None:
    breaker.record(breaker.acquire(), error)


def trip(breaker: CircuitBreaker, clock: FakeClock) -> None:
    for _ in range(5):
        outcome(breaker, FAIL)
    assert breaker.state is BreakerState.OPEN


def to_half_open(breaker: CircuitBreaker, clock: FakeClock) -> None:
    trip(breaker, clock)
    clock.advance(30.0)
    assert breaker.state is BreakerState.HALF_OPEN


def test_stays_closed_until_minimum_calls() -> None:
    """Failures below minimum_calls never open the breaker, however bad the rate."""
    clock = FakeClock()
    breaker, _ = make(clock)
    for _ in range(4):
        outcome(breaker, FAIL)
    snap = breaker.snapshot()
    assert snap.state is BreakerState.CLOSED
    assert snap.failure_rate is None and snap.calls == 4
    outcome(breaker, FAIL)
    assert breaker.state is BreakerState.OPEN


def test_minimum_calls_above_window_waits_for_full_window() -> None:
    """With minimum_calls > window_size, the breaker can open once the window is full."""
    clock = FakeClock()
    breaker, _ = make(clock, window_size=4, minimum_calls=50)
    for _ in range(3):
        outcome(breaker, FAIL)
    assert breaker.state is BreakerState.CLOSED
    outcome(breaker, FAIL)
    assert breaker.state is BreakerState.OPEN


def test_failure_rate_threshold_is_inclusive_and_windowed() -> None:
    """Opens when failures reach the threshold (>=) of the last window_size calls, not before."""
    clock = FakeClock()
    breaker, seen = make(clock)
    for _ in range(10):
        outcome(breaker)  # a full window of successes
    for _ in range(4):
        outcome(breaker, FAIL)
    snap = breaker.snapshot()
    assert snap.state is BreakerState.CLOSED and snap.failure_rate == 40.0
    outcome(breaker, FAIL)  # window is now 5 ok + 5 failed = 50%
    assert breaker.state is BreakerState.OPEN
    assert seen[-1].reason == "failure_rate"
    assert (seen[-1].from_state, seen[-1].to_state) == (BreakerState.CLOSED, BreakerState.OPEN)


def test_slow_call_rate_opens() -> None:
    """Successful but slow calls open the breaker once their rate reaches the threshold."""
    clock = FakeClock()
    breaker, seen = make(clock)
    for _ in range(5):
        permit = breaker.acquire()
        clock.advance(2.5)
        breaker.record(permit)
    assert breaker.state is BreakerState.OPEN
    assert seen[-1].reason == "slow_call_rate"
    assert breaker.snapshot().slow_calls == 5


def test_open_rejects_fast_with_retry_in() -> None:
    """An open breaker refuses calls with CircuitOpen carrying the seconds to the next probe."""
    clock = FakeClock()
    rejected: list[BreakerRejection] = []
    breaker, _ = make(clock)
    breaker.on_reject.append(rejected.append)
    trip(breaker, clock)
    clock.advance(10.0)
    with pytest.raises(CircuitOpen) as info:
        breaker.acquire()
    assert info.value.retry_in_s == pytest.approx(20.0)
    assert rejected[0].state is BreakerState.OPEN
    assert breaker.snapshot().rejected_calls == 1


def test_open_wait_elapsed_moves_to_half_open() -> None:
    """After open_wait_s the breaker moves to HALF_OPEN and reports the transition."""
    clock = FakeClock()
    breaker, seen = make(clock)
    trip(breaker, clock)
    clock.advance(29.9)
    assert breaker.snapshot().next_probe_in_s == pytest.approx(0.1)
    clock.advance(0.1)
    assert breaker.state is BreakerState.HALF_OPEN
    assert seen[-1] == BreakerTransition(
        "p", BreakerState.OPEN, BreakerState.HALF_OPEN, clock.now, "open_wait_elapsed"
    )


def test_half_open_limits_probes() -> None:
    """HALF_OPEN lets through half_open_max_calls probes and refuses the rest."""
    clock = FakeClock()
    breaker, _ = make(clock)
    to_half_open(breaker, clock)
    breaker.acquire()
    breaker.acquire()
    with pytest.raises(CircuitOpen) as info:
        breaker.acquire()
    assert info.value.retry_in_s is None
    assert breaker.snapshot().probes_in_flight == 2


def test_probe_successes_close() -> None:
    """When all probes succeed the breaker closes with a fresh window."""
    clock = FakeClock()
    breaker, seen = make(clock)
    to_half_open(breaker, clock)
    first, second = breaker.acquire(), breaker.acquire()
    breaker.record(first)
    assert breaker.state is BreakerState.HALF_OPEN  # verdict waits for every probe
    breaker.record(second)
    assert breaker.state is BreakerState.CLOSED
    assert seen[-1].reason == "probes_healthy"
    assert breaker.snapshot().calls == 0


def test_probe_failure_reopens() -> None:
    """A failure rate at or over the threshold among the probes reopens the breaker."""
    clock = FakeClock()
    breaker, seen = make(clock)
    to_half_open(breaker, clock)
    first, second = breaker.acquire(), breaker.acquire()
    breaker.record(first)
    breaker.record(second, FAIL)
    assert breaker.state is BreakerState.OPEN
    assert (seen[-1].from_state, seen[-1].reason) == (BreakerState.HALF_OPEN, "failure_rate")
    assert breaker.snapshot().next_probe_in_s == pytest.approx(30.0)


def test_hung_probe_times_out_and_does_not_wedge() -> None:
    """A probe unsettled after probe_timeout_s counts as failed; its late outcome is ignored."""
    clock = FakeClock()
    breaker, _ = make(clock, half_open_max_calls=1)
    to_half_open(breaker, clock)
    hung = breaker.acquire()
    clock.advance(59.0)
    with pytest.raises(CircuitOpen):
        breaker.acquire()
    clock.advance(1.0)
    assert breaker.state is BreakerState.OPEN  # the hung probe was judged a failure
    breaker.record(hung)  # its late success changes nothing
    assert breaker.state is BreakerState.OPEN
    clock.advance(30.0)
    outcome(breaker)  # a fresh probe succeeds
    assert breaker.state is BreakerState.CLOSED


def test_ignored_error_frees_the_probe_slot() -> None:
    """A non-counted error on a probe hands its slot back instead of deciding anything."""
    clock = FakeClock()
    breaker, _ = make(clock, half_open_max_calls=1)
    to_half_open(breaker, clock)
    breaker.record(breaker.acquire(), BAD_REQUEST)
    assert breaker.state is BreakerState.HALF_OPEN
    outcome(breaker)
    assert breaker.state is BreakerState.CLOSED


def test_non_retryable_errors_do_not_count() -> None:
    """Client errors (bad request, auth) are not recorded and never open the breaker."""
    clock = FakeClock()
    breaker, _ = make(clock)
    for _ in range(50):
        outcome(breaker, BAD_REQUEST)
    snap = breaker.snapshot()
    assert snap.state is BreakerState.CLOSED and snap.calls == 0


def test_timeouts_count_and_predicate_is_pluggable() -> None:
    """Bare timeouts count by default; a custom predicate can count any error."""
    clock = FakeClock()
    breaker, _ = make(clock)
    for _ in range(5):
        outcome(breaker, TimeoutError())
    assert breaker.state is BreakerState.OPEN
    strict = CircuitBreaker(
        "s", BreakerConfig(minimum_calls=1, window_size=1), counts_as_failure=lambda e: True
    )
    outcome(strict, BAD_REQUEST)
    assert strict.state is BreakerState.OPEN


def test_stale_permit_outcomes_are_ignored() -> None:
    """An outcome from a permit taken before a transition does not count in the new state."""
    clock = FakeClock()
    breaker, _ = make(clock)
    early = breaker.acquire()
    trip(breaker, clock)
    clock.advance(30.0)
    breaker.record(early, FAIL)
    snap = breaker.snapshot()
    assert snap.state is BreakerState.HALF_OPEN and snap.calls == 0


def test_forced_open_and_disabled() -> None:
    """FORCED_OPEN refuses everything without a probe time; DISABLED permits and records nothing."""
    clock = FakeClock()
    breaker, seen = make(clock)
    breaker.force(BreakerState.FORCED_OPEN)
    clock.advance(1000.0)
    with pytest.raises(CircuitOpen) as info:
        breaker.acquire()
    assert info.value.retry_in_s is None and breaker.state is BreakerState.FORCED_OPEN
    breaker.force(BreakerState.DISABLED)
    for _ in range(20):
        outcome(breaker, FAIL)
    assert breaker.state is BreakerState.DISABLED and breaker.snapshot().calls == 0
    assert [t.reason for t in seen] == ["forced", "forced"]


def test_reset_closes_and_clears() -> None:
    """reset() returns an open breaker to CLOSED with an empty window."""
    clock = FakeClock()
    breaker, seen = make(clock)
    trip(breaker, clock)
    breaker.reset()
    snap = breaker.snapshot()
    assert snap.state is BreakerState.CLOSED and snap.calls == 0 and snap.rejected_calls == 0
    assert seen[-1].reason == "reset"
    breaker.acquire()


def test_config_rejects_nonsense() -> None:
    """Thresholds outside (0, 100] or non-positive durations are refused at construction."""
    with pytest.raises(ValueError):
        BreakerConfig(failure_rate_threshold=0)
    with pytest.raises(ValueError):
        BreakerConfig(open_wait_s=0)
