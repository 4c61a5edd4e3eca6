"""Failures the resilience layer understands, without knowing any vendor's JSON.

    ResilienceError
    ├── UpstreamFailure        raised by a wrapped call; says whether it is worth retrying
    │   └── AttemptTimedOut    the policy's own per-attempt bound fired (retryable, "timeout")
    ├── DeadlineExceeded       the caller's deadline cannot hold another attempt
    ├── CircuitOpen            a breaker refused the call; `retry_in_s` says when it probes again
    └── BulkheadFull           too many calls in flight; refused fast instead of queueing

Provider errors subclass `UpstreamFailure` and fill in `retryable`, `retry_after_s` (the
server's own hint, already parsed) and `reason` (a short, bounded label for metrics).
`reason_of(exc)` gives that label for any exception, so hooks never see unbounded text.
"""

from __future__ import annotations


class ResilienceError(Exception):
    reason: str = "error"


class UpstreamFailure(ResilienceError):
    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        reason: str,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.reason = reason
        self.retry_after_s = retry_after_s


class AttemptTimedOut(UpstreamFailure):
    """One attempt outlived its bound (the call timeout or what the deadline left)."""

    def __init__(self, name: str, timeout_s: float) -> None:
        super().__init__(
            f"{name}: attempt timed out after {timeout_s:.3f}s", retryable=True, reason="timeout"
        )
        self.timeout_s = timeout_s


class DeadlineExceeded(ResilienceError):
    reason = "deadline"


class CircuitOpen(ResilienceError):
    reason = "circuit_open"

    def __init__(self, breaker: str, retry_in_s: float | None) -> None:
        when = f"; next probe in {retry_in_s:.1f}s" if retry_in_s is not None else ""
        super().__init__(f"circuit breaker {breaker!r} is open{when}")
        self.breaker = breaker
        self.retry_in_s = retry_in_s


class BulkheadFull(ResilienceError):
    reason = "bulkhead_full"

    def __init__(self, name: str, limit: int) -> None:
        super().__init__(f"bulkhead {name!r} is full ({limit} calls in flight)")
        self.name = name
        self.limit = limit


def reason_of(exc: BaseException) -> str:
    """A short, bounded label for `exc`: its own `reason`, "timeout", or "error"."""
    if isinstance(exc, ResilienceError):
        return exc.reason
    if isinstance(exc, TimeoutError):
        return "timeout"
    return "error"
