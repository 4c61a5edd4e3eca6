"""An in-process AgentManager over a real SQLite file and event bus, for tests without HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.agents.kinds.base import AgentKindRunner
from app.agents.repository import AgentRepository, TaskRepository
from app.agents.service import AgentManager
from app.core.config import Settings
from app.core.metrics import Metrics
from app.events.hub import Hub
from app.events.repository import EventRepository
from app.events.service import EventBus
from app.store.engine import sqlite_path
from app.store.migrations import migrate
from app.store.sqlite_backend import SQLiteWriteBackend
from app.store.writer import StoreWriter


class StubLLM:
    """What the manager asks of the LLM client outside of runs."""

    provider_names = ["anthropic", "gemini", "openai"]

    async def usage_totals(self) -> list[dict[str, Any]]:
        return [
            {
                "provider": "openai",
                "model": "gpt-4o-mini",
                "calls": 2,
                "input_tokens": 10,
                "output_tokens": 5,
                "cached_input_tokens": 0,
                "cost_usd": 0.25,
            },
        ]


@asynccontextmanager
async def running_manager(
    settings: Settings,
    engine: AsyncEngine,
    runners: Mapping[str, AgentKindRunner],
    metrics: Metrics | None = None,
    busy_timeout_ms: int = 5000,
    hub: Hub | None = None,
) -> AsyncIterator[AgentManager]:
    """A started manager on `engine` (migrated here), publishing live events to `hub`;
    shut down and disposed on exit."""
    await migrate(engine)
    path = sqlite_path(str(engine.url))
    assert path is not None, "a SQLite file"
    metrics = metrics or Metrics()
    writer = StoreWriter(
        SQLiteWriteBackend(path, busy_timeout_ms=busy_timeout_ms),
        on_retry=lambda operation: metrics.store_write_retries.labels(operation).inc(),
    )
    await writer.start()
    bus = EventBus(writer, EventRepository(engine), hub or Hub(100))
    manager = AgentManager(
        settings=settings,
        agents=AgentRepository(engine),
        tasks=TaskRepository(engine),
        writer=writer,
        bus=bus,
        llm=StubLLM(),  # type: ignore[arg-type]
        metrics=metrics,
        runners=runners,
    )
    await manager.start()
    try:
        yield manager
    finally:
        await manager.shutdown()
        await writer.close(within_s=1.0)
        await engine.dispose()
