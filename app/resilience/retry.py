"""Retry decisions, split into small named steps: is it retryable, how long to wait, may we.

Why not stamina or tenacity: both decide waits from their own backoff settings and an overall
timeout, but here the wait must also honour the server's hint (already parsed into
`UpstreamFailure.retry_after_s`), fit inside a deadline owned by the caller (the task), and
report each retry to hooks as a plain record. Those three needs shape every line below, so
the ~40 lines are cheaper than bending a library around them.

Backoff is "full jitter" (AWS architecture blog), in seconds, for the n-th retry (1-based)::

    wait = uniform(0, min(max_backoff_s, initial_backoff_s * 2 ** (n - 1)))

A server hint (`retry-after` / `retry-after-ms`) replaces it, capped at `max_server_wait_s`.
A retry happens only if the failure is retryable, `attempt < max_attempts`, and the time left
before the deadline is more than the wait. How many retries a policy may make across calls is
bounded separately by the retry budget (`budget.py`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from app.resilience.errors import UpstreamFailure


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    max_attempts: int = 3
    """Attempts per call, the first included (1 = never retry)."""
    initial_backoff_s: float = 0.5
    """Backoff ceiling before the first retry, in seconds; doubles per retry."""
    max_backoff_s: float = 8.0
    """Largest backoff ceiling, in seconds."""
    max_server_wait_s: float = 60.0
    """Cap on an honoured server hint, in seconds."""


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, UpstreamFailure) and exc.retryable


def backoff_delay(policy: RetryPolicy, retry_number: int, rng: random.Random) -> float:
    """Full-jitter exponential backoff for the `retry_number`-th retry (1-based)."""
    ceiling = min(policy.max_backoff_s, policy.initial_backoff_s * (2 ** (retry_number - 1)))
    return rng.uniform(0.0, ceiling)


def retry_wait(
    policy: RetryPolicy, exc: BaseException, retry_number: int, rng: random.Random
) -> float:
    """The wait before the next attempt: the server's hint if it gave one, else backoff."""
    hint = exc.retry_after_s if isinstance(exc, UpstreamFailure) else None
    if hint is not None:
        return min(max(hint, 0.0), policy.max_server_wait_s)
    return backoff_delay(policy, retry_number, rng)


def may_retry(policy: RetryPolicy, attempt: int, wait_s: float, remaining_s: float | None) -> bool:
    """Another attempt is allowed if attempts remain and the deadline can hold the wait."""
    if attempt >= policy.max_attempts:
        return False
    return remaining_s is None or wait_s < remaining_s
