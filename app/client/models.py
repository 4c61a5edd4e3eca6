"""Shapes the client reads that the server builds from plain dicts (providers)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Open(BaseModel):
    # tolerate fields a newer server adds
    model_config = ConfigDict(extra="allow")


class BreakerStatus(_Open):
    name: str
    state: str
    failure_rate: float | None = None
    slow_rate: float | None = None
    calls: int = 0
    failed_calls: int = 0
    required_calls: int = 0
    rejected_calls: int = 0
    next_probe_in_s: float | None = None


class BulkheadStatus(_Open):
    limit: int
    in_use: int
    waiting: int


class RetryBudgetStatus(_Open):
    requests: int
    retries: int
    available: float


class ProviderStatus(_Open):
    name: str
    configured: bool
    base_url: str | None = None
    breakers: list[BreakerStatus]
    bulkhead: BulkheadStatus
    retry_budget: RetryBudgetStatus
