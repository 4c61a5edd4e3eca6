"""The one door to providers for agent loops: resilience, fallbacks, events, metrics, cost.

Every attempt emits `llm.request` then `llm.response` or `llm.error`; streamed text arrives as
`llm.delta` events (coalesced to about ten a second). Retries, breaker changes, bulkhead
rejections and fallback hops are reported by `ResilienceTelemetry` through the policy hooks.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

from app.agents.schemas import ModelRef
from app.agents.telemetry import CallContext, ResilienceTelemetry, call_scope, emit_call_event
from app.agents.usage import UsageAccounting
from app.core.metrics import Metrics
from app.events.service import EventBus
from app.providers import errors as pe
from app.providers.base import (
    Completion,
    CompletionRequest,
    Provider,
    StreamDone,
    TextDelta,
    Usage,
)
from app.providers.gateway import ProviderGateway
from app.resilience.fallback import call_with_fallbacks, default_should_fall_back

__all__ = ["CallContext", "LLMClient"]

DELTA_INTERVAL_S = 0.1
DELTA_MAX_CHARS = 2000


def should_fall_back(exc: BaseException) -> bool:
    """Hop to the next model when the primary is open, full, exhausted, out of quota or
    not configured; never on bad requests, which would fail the same way anywhere."""
    return default_should_fall_back(exc) or isinstance(exc, pe.QuotaExhausted | pe.NotConfigured)


class LLMClient:
    def __init__(
        self,
        gateway: ProviderGateway,
        *,
        bus: EventBus,
        metrics: Metrics,
        usage: UsageAccounting,
        telemetry: ResilienceTelemetry,
    ) -> None:
        self.gateway = gateway
        self._bus = bus
        self._metrics = metrics
        self._usage = usage
        self._telemetry = telemetry

    @property
    def provider_names(self) -> list[str]:
        return self.gateway.names

    async def usage_totals(self) -> list[dict[str, Any]]:
        """Cumulative calls, tokens and cost per provider/model (all time)."""
        return await self._usage.totals()

    async def complete(
        self,
        provider_name: str,
        request: CompletionRequest,
        ctx: CallContext,
        *,
        fallbacks: Sequence[ModelRef] = (),
        stream: bool = False,
    ) -> Completion:
        """One completion from the primary model, or from the first fallback that answers."""
        with call_scope(ctx):
            if not fallbacks:
                return await self._call_one(provider_name, request, ctx, stream)
            route = [(provider_name, request.model), *((f.provider, f.model) for f in fallbacks)]
            candidates = [
                (
                    f"{p}/{m}",
                    partial(self._call_one, p, dataclasses.replace(request, model=m), ctx, stream),
                )
                for p, m in route
            ]
            return await call_with_fallbacks(
                candidates, should_fall_back=should_fall_back, on_hop=self._telemetry.on_fallback
            )

    async def _call_one(
        self, provider_name: str, request: CompletionRequest, ctx: CallContext, stream: bool
    ) -> Completion:
        provider = self.gateway.providers.get(provider_name)
        if provider is None:
            raise pe.NotConfigured(
                f"provider {provider_name!r} is not configured", provider=provider_name
            )
        policy = self.gateway.policy_for(provider_name, request.model)
        return await policy.call(
            lambda timeout_s: self._attempt(provider, request, ctx, timeout_s, stream)
        )

    async def _attempt(
        self,
        provider: Provider,
        request: CompletionRequest,
        ctx: CallContext,
        timeout_s: float | None,
        stream: bool,
    ) -> Completion:
        ctx.attempts += 1
        name, model = provider.name, request.model
        model_label = self._metrics.model_label(model)
        # made with the loop's next turn: the request itself leaves first
        self._emit(
            "llm.request",
            ctx,
            {
                "provider": name,
                "model": model,
                "attempt": ctx.attempts,
                "messages": len(request.messages),
                "tools": len(request.tools),
                "stream": stream,
                "timeout_s": None if timeout_s is None else round(timeout_s, 3),
            },
            soon=True,
        )
        started = time.perf_counter()
        try:
            if stream:
                completion = await self._stream(provider, request, ctx, timeout_s)
            else:
                completion = await provider.complete(request, timeout_s=timeout_s)
        except pe.ProviderError as exc:
            elapsed = time.perf_counter() - started
            self._metrics.llm_requests.labels(name, model_label, exc.reason).inc()
            self._metrics.llm_duration.labels(name, model_label).observe(elapsed)
            self._emit(
                "llm.error",
                ctx,
                {**exc.describe(), "model": model, "duration_s": round(elapsed, 4)},
            )
            raise
        elapsed = time.perf_counter() - started
        await self._account(name, model, model_label, completion, ctx, elapsed)
        return completion

    async def _stream(
        self,
        provider: Provider,
        request: CompletionRequest,
        ctx: CallContext,
        timeout_s: float | None,
    ) -> Completion:
        pending: list[str] = []
        last_flush = time.perf_counter()
        completion: Completion | None = None

        def flush() -> None:
            nonlocal last_flush
            if pending:
                self._emit("llm.delta", ctx, {"text": "".join(pending), "attempt": ctx.attempts})
                pending.clear()
            last_flush = time.perf_counter()

        async for event in provider.stream(request, timeout_s=timeout_s):
            if isinstance(event, TextDelta):
                pending.append(event.text)
                size = sum(len(p) for p in pending)
                if size >= DELTA_MAX_CHARS or time.perf_counter() - last_flush >= DELTA_INTERVAL_S:
                    flush()
            elif isinstance(event, StreamDone):
                completion = event.completion
        flush()
        if completion is None:
            raise pe.MalformedResponse(
                f"{provider.name}: stream ended without a final message", provider=provider.name
            )
        return completion

    async def _account(
        self,
        name: str,
        model: str,
        model_label: str,
        completion: Completion,
        ctx: CallContext,
        elapsed: float,
    ) -> None:
        usage = completion.usage
        cost = self.account(name, model, usage, ctx)
        self._metrics.llm_requests.labels(name, model_label, "success").inc()
        self._metrics.llm_duration.labels(name, model_label).observe(elapsed)
        self._emit(
            "llm.response",
            ctx,
            {
                "provider": name,
                "model": model,
                "attempt": ctx.attempts,
                "duration_s": round(elapsed, 4),
                "finish_reason": completion.finish_reason,
                "usage": usage.as_dict(),
                "cost_usd": cost,
                "request_id": completion.request_id,
                "tool_calls": [c.name for c in completion.tool_calls],
            },
        )

    def account(
        self,
        provider: str,
        model: str,
        usage: Usage,
        ctx: CallContext,
        *,
        cost_usd: float | None = None,
    ) -> float:
        """Add usage to the call's task, the metrics and the per-model totals; return its
        cost (`cost_usd` when the caller knows it — a Claude Code run reports its own — else
        priced from the price table). Also used for calls made outside this client."""
        cost = self._usage.cost(provider, model, usage) if cost_usd is None else cost_usd
        ctx.usage = ctx.usage + usage
        ctx.cost_usd += cost
        self._usage.record(provider, model, usage, cost)  # metrics and all-time totals
        return cost

    def emit(self, type_: str, ctx: CallContext, payload: dict[str, object]) -> None:
        """A provider event attributed to the call's agent and task (e.g. `llm.delta`)."""
        self._emit(type_, ctx, payload)

    def _emit(
        self, type_: str, ctx: CallContext, payload: dict[str, object], *, soon: bool = False
    ) -> None:
        emit_call_event(self._bus, type_, ctx, payload, soon=soon)
