"""Resilience hooks that turn the policy's frozen records into events and metrics.

The agent/task a call belongs to travels in a context variable (`call_scope`), so these
plain callables can attribute what they report without the resilience layer knowing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from app.core.metrics import Metrics
from app.events.schemas import LiveEvent
from app.events.service import EventBus
from app.providers.base import Usage
from app.resilience.breaker import BreakerRejection, BreakerTransition
from app.resilience.bulkhead import BulkheadRejection
from app.resilience.fallback import FallbackHop
from app.resilience.policy import BudgetExhausted, ResilienceHooks, RetryRecord


@dataclass(slots=True)
class CallContext:
    """Who a call is for, and what it has cost so far (mutated as attempts complete)."""

    agent: str | None = None
    task_id: str | None = None
    session_id: str | None = None
    attempts: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0


_current: ContextVar[CallContext | None] = ContextVar("bigthree_llm_call", default=None)


@contextlib.contextmanager
def call_scope(ctx: CallContext) -> Iterator[CallContext]:
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def count_tool_results(metrics: Metrics) -> Callable[[LiveEvent], None]:
    """An event-bus listener counting agents' tool results (`tool.result` events)."""

    def listener(event: LiveEvent) -> None:
        if event.type == "tool.result" and event.source == "agent":
            metrics.tool_calls.labels("error" if event.payload.get("is_error") else "ok").inc()

    return listener


def emit_call_event(
    bus: EventBus,
    type_: str,
    ctx: CallContext | None,
    payload: dict[str, object],
    *,
    soon: bool = False,
) -> None:
    """Emit a provider event attributed to the call's agent/task/session (if known);
    `soon`: made on the loop's next turn (see `EventBus.emit`)."""
    bus.emit(
        type_,
        source="provider",
        agent=ctx.agent if ctx else None,
        task_id=ctx.task_id if ctx else None,
        session_id=ctx.session_id if ctx else None,
        payload=payload,
        soon=soon,
    )


class ResilienceTelemetry:
    def __init__(self, bus: EventBus, metrics: Metrics) -> None:
        self._bus = bus
        self._metrics = metrics

    def hooks(self) -> ResilienceHooks:
        return ResilienceHooks(
            on_retry=[self.on_retry],
            on_breaker_transition=[self.on_transition],
            on_breaker_rejection=[self.on_rejection],
            on_bulkhead_rejection=[self.on_bulkhead_rejection],
            on_budget_exhausted=[self.on_budget_exhausted],
        )

    def _emit(self, type_: str, payload: dict[str, object]) -> None:
        emit_call_event(self._bus, type_, _current.get(), payload)

    def on_retry(self, r: RetryRecord) -> None:
        self._metrics.llm_retries.labels(r.name, r.reason).inc()
        self._emit(
            "llm.retry",
            {
                "provider": r.name,
                "attempt": r.attempt,
                "wait_s": round(r.wait_s, 3),
                "reason": r.reason,
                "error": r.error,
            },
        )

    def on_transition(self, t: BreakerTransition) -> None:
        m = self._metrics
        m.circuit_transitions.labels(t.name, t.from_state.value, t.to_state.value).inc()
        # a transition belongs to the provider, not to the call that happened to trigger it
        self._bus.emit(
            "breaker.transition",
            source="provider",
            payload={
                "breaker": t.name,
                "from": t.from_state.value,
                "to": t.to_state.value,
                "reason": t.reason,
            },
        )

    def on_rejection(self, r: BreakerRejection) -> None:
        retry_in = None if r.retry_in_s is None else round(r.retry_in_s, 3)
        self._emit(
            "breaker.rejected", {"breaker": r.name, "state": r.state.value, "retry_in_s": retry_in}
        )

    def on_bulkhead_rejection(self, r: BulkheadRejection) -> None:
        self._metrics.bulkhead_rejections.labels(r.name).inc()
        self._emit(
            "bulkhead.rejected",
            {
                "provider": r.name,
                "limit": r.limit,
                "in_use": r.in_use,
                "waited_s": round(r.waited_s, 3),
            },
        )

    def on_budget_exhausted(self, b: BudgetExhausted) -> None:
        self._metrics.llm_budget_exhausted.labels(b.name).inc()
        self._emit(
            "llm.retry_budget_exhausted",
            {
                "provider": b.name,
                "attempt": b.attempt,
                "reason": b.reason,
                "requests_in_window": b.requests_in_window,
                "retries_in_window": b.retries_in_window,
            },
        )

    def on_fallback(self, hop: FallbackHop) -> None:
        from_provider = hop.from_label.split("/", 1)[0]
        to_provider = hop.to_label.split("/", 1)[0]
        self._metrics.llm_fallbacks.labels(from_provider, to_provider).inc()
        self._emit(
            "llm.fallback",
            {"from": hop.from_label, "to": hop.to_label, "reason": hop.reason, "error": hop.error},
        )
