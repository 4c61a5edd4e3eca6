"""A retry budget (as Finagle's RetryBudget and Envoy's retry_budget): retries never multiply
an outage.

Every call deposits one request; every retry must withdraw one token. Over the last
`window_s` seconds::

    retries allowed = ratio * requests + min_retries_per_s * window_s - retries already made

With the defaults (ratio 0.2, window 10 s, floor 0.5 retries/s) a steady stream of calls
against a dead upstream makes at most 1.2 attempts per call, plus 5 retries per 10 s so that
a trickle of traffic can still retry at all. When the budget is empty the policy raises the
original error instead of retrying and reports `budget_exhausted`.

The window is kept as `slices` buckets (1 s each by default), so counts leave it one bucket at a
time: memory is constant whatever the call rate. Not thread-safe: use it from one event loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from app.resilience.timeouts import Clock


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryBudgetConfig:
    ratio: float = 0.2
    """Retries allowed per request in the window (0.2 = at most 20% extra load)."""
    window_s: float = 10.0
    """How far back requests and retries are counted, in seconds."""
    min_retries_per_s: float = 0.5
    """Retries always allowed per second of window, whatever the traffic (the floor)."""
    slices: int = 10
    """Buckets the window is kept in (its time resolution is window_s / slices)."""

    def __post_init__(self) -> None:
        if self.ratio < 0 or self.min_retries_per_s < 0:
            raise ValueError("ratio and min_retries_per_s must be >= 0")
        if self.window_s <= 0 or self.slices < 1:
            raise ValueError("window_s must be > 0 and slices >= 1")


@dataclass(frozen=True, slots=True)
class BudgetSnapshot:
    requests: int
    retries: int
    available: float
    """Retries that could be made now (may be fractional; a retry needs >= 1)."""


class RetryBudget:
    def __init__(self, config: RetryBudgetConfig | None = None, *, clock: Clock = time.monotonic):
        self.config = config or RetryBudgetConfig()
        self._clock = clock
        self._width = self.config.window_s / self.config.slices
        self._requests = [0] * self.config.slices
        self._retries = [0] * self.config.slices
        self._request_total = 0
        self._retry_total = 0
        self._slice = int(clock() // self._width)
        self._floor = self.config.min_retries_per_s * self.config.window_s

    def deposit(self) -> None:
        """Count one request (call it once per call, not per attempt)."""
        index = self._advance()
        self._requests[index] += 1
        self._request_total += 1

    def try_withdraw(self) -> bool:
        """Spend one retry if the budget holds one; False means: do not retry."""
        index = self._advance()
        if self._available() < 1.0:
            return False
        self._retries[index] += 1
        self._retry_total += 1
        return True

    def snapshot(self) -> BudgetSnapshot:
        self._advance()
        return BudgetSnapshot(self._request_total, self._retry_total, self._available())

    def _available(self) -> float:
        return self.config.ratio * self._request_total + self._floor - self._retry_total

    def _advance(self) -> int:
        """Drop buckets older than the window; return the current bucket's index."""
        slices = self.config.slices
        current = int(self._clock() // self._width)
        gap = current - self._slice
        if gap >= slices:
            self._requests = [0] * slices
            self._retries = [0] * slices
            self._request_total = self._retry_total = 0
        else:
            for step in range(1, gap + 1):
                index = (self._slice + step) % slices
                self._request_total -= self._requests[index]
                self._retry_total -= self._retries[index]
                self._requests[index] = self._retries[index] = 0
        if gap > 0:
            self._slice = current
        return self._slice % slices
