"""Fallback: try candidates in order (e.g. primary provider/model, then the configured
fallbacks) and return the first success.

`call_with_fallbacks` moves to the next candidate only when `should_fall_back(error)` says the
error is about *that* candidate's availability. The default, `default_should_fall_back`, hops on:

- `CircuitOpen`   the candidate's breaker is open (or its probes are busy);
- `BulkheadFull`  the candidate is saturated;
- a retryable `UpstreamFailure` reaching the caller: its policy's retries were exhausted or
  its retry budget was empty (rate limited, overloaded, 5xx, timeouts, connection errors).

It does not hop on `DeadlineExceeded` (no time is left for anyone), on non-retryable upstream
errors (a bad request or a missing key fails the same way elsewhere, and hiding it helps no
one), or on anything else (a bug). To also hop on, say, quota exhaustion, pass a predicate
that adds `reason_of(exc) == "quota_exhausted"`. Cancellation is never caught.

Each hop is reported as a frozen `FallbackHop`. When no candidate succeeds, the last error is
raised unchanged (so its type and status survive) with a note naming the chain, and
`fallback_attempts(exc)` returns every candidate tried with its error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from app.resilience.errors import BulkheadFull, CircuitOpen, UpstreamFailure, reason_of
from app.resilience.hooks import emit

T = TypeVar("T")

Candidate = tuple[str, Callable[[], Awaitable[T]]]

_ATTEMPTS_ATTR = "_bigthree_fallback_attempts"


@dataclass(frozen=True, slots=True)
class FallbackHop:
    from_label: str
    to_label: str
    reason: str
    error: str


@dataclass(frozen=True, slots=True)
class FallbackAttempt:
    label: str
    reason: str
    error: Exception


def default_should_fall_back(exc: BaseException) -> bool:
    """Hop on an open breaker, a full bulkhead, or a retryable failure that reached us."""
    if isinstance(exc, CircuitOpen | BulkheadFull):
        return True
    return isinstance(exc, UpstreamFailure) and exc.retryable


def fallback_attempts(exc: BaseException) -> tuple[FallbackAttempt, ...]:
    """The candidates tried before `exc` was raised by `call_with_fallbacks`, in order."""
    attempts: tuple[FallbackAttempt, ...] = getattr(exc, _ATTEMPTS_ATTR, ())
    return attempts


async def call_with_fallbacks(
    candidates: Sequence[Candidate[T]],
    *,
    should_fall_back: Callable[[BaseException], bool] = default_should_fall_back,
    on_hop: Callable[[FallbackHop], None] | None = None,
) -> T:
    """Return the first candidate's success; hop only on errors `should_fall_back` accepts."""
    if not candidates:
        raise ValueError("call_with_fallbacks needs at least one candidate")
    tried: list[FallbackAttempt] = []
    for index, (label, call) in enumerate(candidates):
        try:
            return await call()
        except Exception as exc:
            tried.append(FallbackAttempt(label, reason_of(exc), exc))
            is_last = index == len(candidates) - 1
            if is_last or not should_fall_back(exc):
                _annotate(exc, tried)
                raise
            hop = FallbackHop(label, candidates[index + 1][0], reason_of(exc), str(exc))
            if on_hop is not None:
                emit((on_hop,), hop)
    raise AssertionError("unreachable")  # pragma: no cover


def _annotate(exc: Exception, tried: list[FallbackAttempt]) -> None:
    setattr(exc, _ATTEMPTS_ATTR, tuple(tried))  # read back by fallback_attempts()
    if len(tried) > 1:
        chain = " -> ".join(f"{a.label} ({a.reason})" for a in tried)
        exc.add_note(f"fallback chain: {chain}")
