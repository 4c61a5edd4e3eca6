"""Fallback chains: hop on unavailability, stop on everything else, report each hop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from app.resilience.errors import (
    BulkheadFull,
    CircuitOpen,
    DeadlineExceeded,
    UpstreamFailure,
    reason_of,
)
from app.resilience.fallback import (
    FallbackHop,
    call_with_fallbacks,
    default_should_fall_back,
    fallback_attempts,
)

RATE_LIMITED = UpstreamFailure("429", retryable=True, reason="rate_limited")
BAD_REQUEST = UpstreamFailure("400", retryable=False, reason="bad_request")
QUOTA = UpstreamFailure("quota", retryable=False, reason="quota_exhausted")


def returns(value: str) -> Callable[[], Awaitable[str]]:
    async def call() -> str:
        return value

    return call


def raises(exc: Exception) -> Callable[[], Awaitable[str]]:
    async def call() -> str:
        raise exc

    return call


async def test_primary_success_makes_no_hop() -> None:
    """The first candidate's success is returned without touching the others."""
    hops: list[FallbackHop] = []
    result = await call_with_fallbacks(
        [("a", returns("A")), ("b", raises(AssertionError("not called")))], on_hop=hops.append
    )
    assert result == "A" and hops == []


async def test_hops_on_open_breaker_full_bulkhead_and_exhausted_retries() -> None:
    """Open breaker, full bulkhead and a retryable failure each move to the next candidate."""
    hops: list[FallbackHop] = []
    result = await call_with_fallbacks(
        [
            ("openai:gpt", raises(CircuitOpen("openai", 12.0))),
            ("anthropic:claude", raises(BulkheadFull("anthropic", 4))),
            ("gemini:flash", raises(RATE_LIMITED)),
            ("local:llama", returns("L")),
        ],
        on_hop=hops.append,
    )
    assert result == "L"
    assert hops == [
        FallbackHop(
            "openai:gpt", "anthropic:claude", "circuit_open", str(CircuitOpen("openai", 12.0))
        ),
        FallbackHop(
            "anthropic:claude", "gemini:flash", "bulkhead_full", str(BulkheadFull("anthropic", 4))
        ),
        FallbackHop("gemini:flash", "local:llama", "rate_limited", "429"),
    ]


async def test_client_error_and_deadline_do_not_hop() -> None:
    """A non-retryable error or an exhausted deadline is raised from the candidate that hit it."""
    for error in (BAD_REQUEST, DeadlineExceeded("late")):
        with pytest.raises(type(error)) as info:
            await call_with_fallbacks([("a", raises(error)), ("b", returns("B"))])
        assert info.value is error
        assert [a.label for a in fallback_attempts(info.value)] == ["a"]


async def test_all_failing_raises_last_error_with_chain() -> None:
    """When every candidate fails, the last error is raised carrying the attempted labels."""
    last = UpstreamFailure("503", retryable=True, reason="overloaded")
    with pytest.raises(UpstreamFailure) as info:
        await call_with_fallbacks([("a", raises(RATE_LIMITED)), ("b", raises(last))])
    assert info.value is last
    attempts = fallback_attempts(info.value)
    assert [(a.label, a.reason) for a in attempts] == [("a", "rate_limited"), ("b", "overloaded")]
    assert attempts[0].error is RATE_LIMITED
    assert "fallback chain: a (rate_limited) -> b (overloaded)" in (info.value.__notes__ or [])


async def test_custom_predicate_extends_default() -> None:
    """A caller predicate can add reasons to hop on, such as quota exhaustion."""

    def hop(exc: BaseException) -> bool:
        return default_should_fall_back(exc) or reason_of(exc) == "quota_exhausted"

    assert (
        await call_with_fallbacks([("a", raises(QUOTA)), ("b", returns("B"))], should_fall_back=hop)
        == "B"
    )
    with pytest.raises(UpstreamFailure):
        await call_with_fallbacks([("a", raises(QUOTA)), ("b", returns("B"))])


async def test_empty_candidates_refused() -> None:
    """An empty candidate list is a programming error."""
    with pytest.raises(ValueError):
        await call_with_fallbacks([])
