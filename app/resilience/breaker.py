"""A circuit breaker with Resilience4j's semantics, for one provider (or provider + model).

States::

    CLOSED ──(failure or slow rate ≥ threshold, once enough calls)──▶ OPEN
    OPEN ──(open_wait_s elapsed, noticed on the next call or read)──▶ HALF_OPEN
    HALF_OPEN ──(all half_open_max_calls probes done, rates below thresholds)──▶ CLOSED
    HALF_OPEN ──(all probes done, a rate at or above its threshold)──▶ OPEN
    FORCED_OPEN / DISABLED: set by `force()` and left only by `force()` or `reset()`

Measurement (count-based sliding window of the last `window_size` recorded calls)::

    failure_rate % = 100 * failed calls / recorded calls
    slow_rate    % = 100 * calls slower than slow_call_duration_s / recorded calls

Rates are computed only once `min(minimum_calls, window_size)` calls are recorded (before that
the snapshot shows None and the breaker cannot open). A call that fails slowly counts in both.
HALF_OPEN lets through `half_open_max_calls` probes in total (they may run concurrently; further
calls are refused) and measures them in a fresh window of that size. A probe permit not
settled within `probe_timeout_s` is counted as a failed (and, if that is longer than the slow
threshold, slow) call, so a hung probe cannot wedge HALF_OPEN; its late outcome is ignored.

What counts: `counts_as_failure(exc)` (default `is_health_failure`: timeouts and retryable
`UpstreamFailure`s). Any other error — a bad request, an auth failure — is *ignored*, as
Resilience4j's ignoreExceptions: not recorded at all, and a probe's slot is handed back.
Outcomes of permits taken before the latest transition are ignored too.

Not thread-safe: use it from one event loop (no method awaits, so no locks are needed).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from app.resilience.errors import CircuitOpen, UpstreamFailure
from app.resilience.hooks import emit
from app.resilience.timeouts import Clock


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerConfig:
    """Breaker thresholds. Rates are percentages (0-100], durations seconds."""

    window_size: int = 20
    """Recorded calls kept in the sliding window."""
    minimum_calls: int = 10
    """Calls recorded before rates are computed (capped at `window_size`)."""
    failure_rate_threshold: float = 50.0
    """Open when failed calls are at least this % of the window."""
    slow_call_duration_s: float = 60.0
    """A call taking longer than this is slow (LLM calls are legitimately long)."""
    slow_call_rate_threshold: float = 100.0
    """Open when slow calls are at least this % of the window (100 = only if all are slow)."""
    open_wait_s: float = 30.0
    """Time spent OPEN before probing (HALF_OPEN)."""
    half_open_max_calls: int = 3
    """Probes allowed in HALF_OPEN; the verdict waits for all of them."""
    probe_timeout_s: float = 180.0
    """A probe not settled within this is counted as failed and frees its slot."""

    def __post_init__(self) -> None:
        if self.window_size < 1 or self.minimum_calls < 1 or self.half_open_max_calls < 1:
            raise ValueError("window_size, minimum_calls, half_open_max_calls must be >= 1")
        for rate in (self.failure_rate_threshold, self.slow_call_rate_threshold):
            if not 0.0 < rate <= 100.0:
                raise ValueError("rate thresholds are percentages in (0, 100]")
        if min(self.slow_call_duration_s, self.open_wait_s, self.probe_timeout_s) <= 0:
            raise ValueError("durations must be > 0")


@dataclass(frozen=True, slots=True)
class BreakerTransition:
    name: str
    from_state: BreakerState
    to_state: BreakerState
    at: float
    """The breaker's clock (monotonic seconds) when the transition was made."""
    reason: str = ""
    """failure_rate, slow_call_rate, open_wait_elapsed, probes_healthy, forced, reset."""


@dataclass(frozen=True, slots=True)
class BreakerRejection:
    name: str
    state: BreakerState
    retry_in_s: float | None
    at: float


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    name: str
    state: BreakerState
    failure_rate: float | None
    """% of recorded calls that failed; None until `required_calls` are recorded."""
    slow_rate: float | None
    calls: int
    """Calls recorded in the current window (the probe window in HALF_OPEN)."""
    failed_calls: int
    slow_calls: int
    required_calls: int
    probes_in_flight: int
    rejected_calls: int
    """Calls refused since the last transition."""
    next_probe_in_s: float | None
    """OPEN: seconds until HALF_OPEN. HALF_OPEN: 0 if a probe slot is free. Else None."""
    in_state_s: float


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to run one call; settle it with `record()` or `release()`."""

    epoch: int
    started: float
    probe: int | None = None


def is_health_failure(exc: BaseException) -> bool:
    """Default: only failures that say the provider is unwell (timeouts, retryable errors)."""
    if isinstance(exc, UpstreamFailure):
        return exc.retryable
    return isinstance(exc, TimeoutError)


class _Window:
    """The last `size` outcomes, with running counts."""

    __slots__ = ("failed", "outcomes", "slow")

    def __init__(self, size: int) -> None:
        self.outcomes: deque[tuple[bool, bool]] = deque(maxlen=size)
        self.failed = 0
        self.slow = 0

    def add(self, failed: bool, slow: bool) -> None:
        if len(self.outcomes) == self.outcomes.maxlen:
            old_failed, old_slow = self.outcomes[0]
            self.failed -= old_failed
            self.slow -= old_slow
        self.outcomes.append((failed, slow))
        self.failed += failed
        self.slow += slow

    def rates(self) -> tuple[float, float]:
        calls = len(self.outcomes)
        if not calls:
            return 0.0, 0.0
        return 100.0 * self.failed / calls, 100.0 * self.slow / calls


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        config: BreakerConfig | None = None,
        *,
        counts_as_failure: Callable[[BaseException], bool] = is_health_failure,
        clock: Clock = time.monotonic,
        on_transition: Iterable[Callable[[BreakerTransition], None]] = (),
        on_reject: Iterable[Callable[[BreakerRejection], None]] = (),
    ) -> None:
        self.name = name
        self.config = config or BreakerConfig()
        self.on_transition = list(on_transition)
        self.on_reject = list(on_reject)
        self._counts_as_failure = counts_as_failure
        self._clock = clock
        self._min_calls = min(self.config.minimum_calls, self.config.window_size)
        self._state = BreakerState.CLOSED
        self._since = clock()
        self._epoch = 0
        self._window = _Window(self.config.window_size)
        self._open_until = 0.0
        self._probes: dict[int, float] = {}
        self._probe_seq = 0
        self._rejected = 0

    # --- reading -------------------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        self._refresh(self._clock())
        return self._state

    def snapshot(self) -> BreakerSnapshot:
        now = self._clock()
        self._refresh(now)
        window = self._window
        required = self._required_calls()
        enough = len(window.outcomes) >= required
        failure_rate, slow_rate = window.rates()
        return BreakerSnapshot(
            name=self.name,
            state=self._state,
            failure_rate=failure_rate if enough else None,
            slow_rate=slow_rate if enough else None,
            calls=len(window.outcomes),
            failed_calls=window.failed,
            slow_calls=window.slow,
            required_calls=required,
            probes_in_flight=len(self._probes),
            rejected_calls=self._rejected,
            next_probe_in_s=self._next_probe_in(now),
            in_state_s=now - self._since,
        )

    # --- calls ---------------------------------------------------------------------------

    def acquire(self) -> Permit:
        """Leave to make one call, or `CircuitOpen` if the breaker refuses it."""
        now = self._clock()
        self._refresh(now)
        state = self._state
        if state is BreakerState.CLOSED or state is BreakerState.DISABLED:
            return Permit(self._epoch, now)
        if state is BreakerState.HALF_OPEN and self._probe_slot_free():
            self._probe_seq += 1
            self._probes[self._probe_seq] = now
            return Permit(self._epoch, now, self._probe_seq)
        self._rejected += 1
        retry_in = self._next_probe_in(now) if state is BreakerState.OPEN else None
        emit(self.on_reject, BreakerRejection(self.name, state, retry_in, now))
        raise CircuitOpen(self.name, retry_in)

    def record(
        self, permit: Permit, error: BaseException | None = None, *, duration_s: float | None = None
    ) -> None:
        """Settle a permit with its outcome: success (`error=None`) or the error raised.
        `duration_s` replaces the permit's age for the slow-call test, for a permit held over
        work that is not one upstream call (a Claude Code run: its mean API call time)."""
        if error is not None and not self._counts_as_failure(error):
            self.release(permit)
            return
        now = self._clock()
        self._refresh(now)
        if not self._is_current(permit):
            return
        took = now - permit.started if duration_s is None else duration_s
        slow = took > self.config.slow_call_duration_s
        self._window.add(error is not None, slow)
        self._evaluate(now)

    def release(self, permit: Permit) -> None:
        """Settle a permit without recording an outcome (ignored error, cancellation)."""
        self._refresh(self._clock())
        if permit.epoch == self._epoch and permit.probe is not None:
            self._probes.pop(permit.probe, None)

    # --- control -------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to CLOSED with an empty window; in-flight outcomes are ignored."""
        self._transition(BreakerState.CLOSED, self._clock(), "reset")

    def force(self, state: BreakerState) -> None:
        """Move to `state` now (FORCED_OPEN and DISABLED stay until changed again)."""
        self._transition(BreakerState(state), self._clock(), "forced")

    # --- internals -----------------------------------------------------------------------

    def _required_calls(self) -> int:
        if self._state is BreakerState.HALF_OPEN:
            return self.config.half_open_max_calls
        return self._min_calls

    def _probe_slot_free(self) -> bool:
        issued = len(self._window.outcomes) + len(self._probes)
        return issued < self.config.half_open_max_calls

    def _next_probe_in(self, now: float) -> float | None:
        if self._state is BreakerState.OPEN:
            return max(0.0, self._open_until - now)
        if self._state is BreakerState.HALF_OPEN and self._probe_slot_free():
            return 0.0
        return None

    def _is_current(self, permit: Permit) -> bool:
        if permit.epoch != self._epoch:
            return False
        if self._state is BreakerState.HALF_OPEN:
            # A probe already counted as timed out has left `_probes`.
            return permit.probe is not None and self._probes.pop(permit.probe, None) is not None
        return self._state is BreakerState.CLOSED

    def _refresh(self, now: float) -> None:
        if self._state is BreakerState.OPEN and now >= self._open_until:
            self._transition(BreakerState.HALF_OPEN, now, "open_wait_elapsed")
        if self._state is BreakerState.HALF_OPEN and self._probes:
            timeout = self.config.probe_timeout_s
            expired = [pid for pid, started in self._probes.items() if now - started >= timeout]
            for pid in expired:
                del self._probes[pid]
                self._window.add(True, timeout > self.config.slow_call_duration_s)
            if expired:
                self._evaluate(now)

    def _evaluate(self, now: float) -> None:
        if len(self._window.outcomes) < self._required_calls():
            return
        failure_rate, slow_rate = self._window.rates()
        if failure_rate >= self.config.failure_rate_threshold:
            self._transition(BreakerState.OPEN, now, "failure_rate")
        elif slow_rate >= self.config.slow_call_rate_threshold:
            self._transition(BreakerState.OPEN, now, "slow_call_rate")
        elif self._state is BreakerState.HALF_OPEN:
            self._transition(BreakerState.CLOSED, now, "probes_healthy")

    def _transition(self, to: BreakerState, now: float, reason: str) -> None:
        previous = self._state
        self._state = to
        self._since = now
        self._epoch += 1
        self._rejected = 0
        self._probes.clear()
        if to is BreakerState.CLOSED:
            self._window = _Window(self.config.window_size)
        elif to is BreakerState.HALF_OPEN:
            self._window = _Window(self.config.half_open_max_calls)
        elif to is BreakerState.OPEN:
            self._open_until = now + self.config.open_wait_s
        if previous is not to:
            emit(self.on_transition, BreakerTransition(self.name, previous, to, now, reason))
