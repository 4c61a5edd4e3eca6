"""The one door to providers for agent loops: resilience, events, metrics and cost per call.

Every attempt emits `llm.request` then `llm.response` or `llm.error`; every retry emits
`llm.retry`. The agent/task a call belongs to travels in a context variable, so resilience
hooks (plain callables) can attribute what they report.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field

from app.core.metrics import Metrics
from app.events.service import EventBus
from app.providers import errors as pe
from app.providers.base import Completion, CompletionRequest, Provider, Usage
from app.providers.pricing import PriceTable
from app.resilience.policy import ResiliencePolicy, RetryRecord


@dataclass(slots=True)
class CallContext:
    """Who a call is for, and what it has cost so far (mutated as attempts complete)."""

    agent: str | None = None
    task_id: str | None = None
    attempts: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0


_current: ContextVar[CallContext | None] = ContextVar("bigthree_llm_call", default=None)


class LLMClient:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        policies: Mapping[str, ResiliencePolicy],
        *,
        bus: EventBus,
        metrics: Metrics,
        prices: PriceTable,
    ) -> None:
        self._providers = providers
        self._policies = policies
        self._bus = bus
        self._metrics = metrics
        self._prices = prices
        for policy in policies.values():
            policy.hooks.on_retry.append(self._on_retry)

    @property
    def provider_names(self) -> list[str]:
        return sorted(self._providers)

    async def complete(
        self, provider_name: str, request: CompletionRequest, ctx: CallContext
    ) -> Completion:
        provider = self._providers.get(provider_name)
        policy = self._policies.get(provider_name)
        if provider is None or policy is None:
            raise pe.NotConfigured(
                f"provider {provider_name!r} is not configured", provider=provider_name
            )
        token = _current.set(ctx)
        try:
            return await policy.call(
                lambda timeout_s: self._attempt(provider, request, ctx, timeout_s)
            )
        finally:
            _current.reset(token)

    async def _attempt(
        self,
        provider: Provider,
        request: CompletionRequest,
        ctx: CallContext,
        timeout_s: float | None,
    ) -> Completion:
        ctx.attempts += 1
        name, model = provider.name, request.model
        model_label = self._metrics.model_label(model)
        self._bus.emit(
            "llm.request",
            source="provider",
            agent=ctx.agent,
            task_id=ctx.task_id,
            payload={
                "provider": name,
                "model": model,
                "attempt": ctx.attempts,
                "messages": len(request.messages),
                "tools": len(request.tools),
                "timeout_s": timeout_s,
            },
        )
        started = time.perf_counter()
        try:
            completion = await provider.complete(request, timeout_s=timeout_s)
        except pe.ProviderError as exc:
            elapsed = time.perf_counter() - started
            self._metrics.llm_requests.labels(name, model_label, exc.reason).inc()
            self._metrics.llm_duration.labels(name, model_label).observe(elapsed)
            self._bus.emit(
                "llm.error",
                source="provider",
                agent=ctx.agent,
                task_id=ctx.task_id,
                payload={**exc.describe(), "duration_s": round(elapsed, 4)},
            )
            raise
        elapsed = time.perf_counter() - started
        cost = self._prices.cost(name, model, completion.usage)
        ctx.usage = ctx.usage + completion.usage
        ctx.cost_usd += cost
        m = self._metrics
        m.llm_requests.labels(name, model_label, "success").inc()
        m.llm_duration.labels(name, model_label).observe(elapsed)
        m.llm_tokens.labels(name, model_label, "input").inc(completion.usage.input_tokens)
        m.llm_tokens.labels(name, model_label, "output").inc(completion.usage.output_tokens)
        m.llm_cost.labels(name, model_label).inc(cost)
        self._bus.emit(
            "llm.response",
            source="provider",
            agent=ctx.agent,
            task_id=ctx.task_id,
            payload={
                "provider": name,
                "model": model,
                "attempt": ctx.attempts,
                "duration_s": round(elapsed, 4),
                "finish_reason": completion.finish_reason,
                "usage": completion.usage.as_dict(),
                "cost_usd": cost,
                "request_id": completion.request_id,
                "tool_calls": [c.name for c in completion.tool_calls],
            },
        )
        return completion

    def _on_retry(self, record: RetryRecord) -> None:
        ctx = _current.get()
        self._metrics.llm_retries.labels(record.name, record.reason).inc()
        self._bus.emit(
            "llm.retry",
            source="provider",
            agent=ctx.agent if ctx else None,
            task_id=ctx.task_id if ctx else None,
            payload={
                "provider": record.name,
                "attempt": record.attempt,
                "wait_s": round(record.wait_s, 3),
                "reason": record.reason,
                "error": record.error,
            },
        )
