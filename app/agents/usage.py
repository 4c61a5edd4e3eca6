"""UsageLedger: per provider/model usage totals, added up in memory and stored in batches.

A provider call only adds to a dict (no database write inside the call, its timeout or its
bulkhead slot); a background flush stores the sums once a second, and `flush()` runs before
totals are read and at shutdown. A crash loses at most the last second of these running
totals — each task's own usage and cost are stored with the task and are not affected.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog

from app.agents.repository import UsageDelta, UsageRepository
from app.providers.base import Usage

log = structlog.get_logger(__name__)


class UsageLedger:
    def __init__(self, repository: UsageRepository, *, interval_s: float = 1.0) -> None:
        self._repository = repository
        self._interval_s = interval_s
        self._pending: dict[tuple[str, str], UsageDelta] = {}
        self._lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None

    def record(self, provider: str, model: str, usage: Usage, cost_usd: float) -> None:
        self._pending.setdefault((provider, model), UsageDelta()).add(usage, cost_usd)

    async def flush(self) -> None:
        async with self._lock:
            batch, self._pending = self._pending, {}
            try:
                await self._repository.add_many(batch)
            except Exception:
                for key, delta in batch.items():  # keep them for the next flush
                    self._pending.setdefault(key, UsageDelta()).merge(delta)
                raise

    async def totals(self) -> list[dict[str, Any]]:
        await self.flush()
        return await self._repository.totals()

    def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_loop(), name="usage-ledger")

    async def aclose(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            if self._pending:
                try:
                    await self.flush()
                except Exception:
                    log.exception("usage_flush_failed")
