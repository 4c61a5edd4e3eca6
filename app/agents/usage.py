"""Usage: the one place where a model call's tokens are priced and recorded.

`UsageAccounting.record()` is called once per answered call — by the agent loops' LLM client
and by realtime sessions alike — and counts tokens and cost in the metrics and in the
all-time per provider/model totals. The totals go to the store writer with its next group
commit (no database write inside the provider call, its timeout or its bulkhead slot).
Each task's own usage and cost are stored with the task.
"""

from __future__ import annotations

from typing import Any

from app.agents.repository import UsageRepository
from app.core.metrics import Metrics
from app.providers.base import Usage
from app.providers.pricing import PriceTable
from app.store.rows import UsageAdded
from app.store.writer import StoreWriter


class UsageAccounting:
    def __init__(
        self,
        *,
        prices: PriceTable,
        metrics: Metrics,
        writer: StoreWriter,
        repository: UsageRepository,
    ) -> None:
        self.prices = prices
        self._metrics = metrics
        self._writer = writer
        self._repository = repository

    def cost(self, provider: str, model: str, usage: Usage) -> float:
        return self.prices.cost(provider, model, usage)

    def record(self, provider: str, model: str, usage: Usage, cost_usd: float) -> None:
        """Count one call's usage and cost (metrics and the stored all-time totals)."""
        m = self._metrics
        label = m.model_label(model)
        m.llm_tokens.labels(provider, label, "input").inc(usage.input_tokens)
        m.llm_tokens.labels(provider, label, "output").inc(usage.output_tokens)
        m.llm_cost.labels(provider, label).inc(cost_usd)
        self._writer.write_later(
            UsageAdded(
                provider=provider,
                model=model,
                calls=1,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cached_input_tokens=usage.cached_input_tokens,
                cost_usd=cost_usd,
            ),
            operation="usage",
        )

    async def totals(self) -> list[dict[str, Any]]:
        """All-time calls, tokens and cost per provider/model, everything recorded so far
        included."""
        await self._writer.flush(5.0)
        return await self._repository.totals()
