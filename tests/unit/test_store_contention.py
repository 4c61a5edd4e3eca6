"""A locked store: a real SQLite file, locked for real by another connection."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from app.agents.kinds.base import RunContext
from app.agents.schemas import Agent, AgentCreate, Task, TaskCreate, TaskState
from app.core.config import Settings
from app.core.errors import StorageUnavailable
from app.core.metrics import Metrics
from app.store.engine import create_engine
from tests.support.manager import running_manager

BUSY_MS = 50  # short, so that a lock held a little longer already refuses a writer


async def until(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    """Poll `condition` on the event loop until it holds."""
    give_up = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class GateRunner:
    """Answers with the prompt; a prompt 'gated' first waits for `gate`."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()

    async def run(self, agent: Agent, task: Task, ctx: RunContext) -> str:
        if task.prompt == "gated":
            await self.gate.wait()
        return f"did: {task.prompt}"


def retries(metrics: Metrics, operation: str) -> float:
    value = metrics.registry.get_sample_value(
        "bigthree_store_write_retries_total", {"operation": operation}
    )
    return value or 0.0


async def test_a_locked_store_keeps_a_result_until_it_can_write_it(tmp_path: Path) -> None:
    """Another process holds the write lock as a task finishes: the outcome is kept (the
    task still reads `running`, as stored), new work is refused with StorageUnavailable
    instead of waiting, and once the lock is released the outcome is stored and the agent
    goes on with its next task."""
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    engine = create_engine(settings.resolved_database_url, busy_timeout_ms=BUSY_MS)
    runner = GateRunner()
    metrics = Metrics()
    async with running_manager(
        settings, engine, {"chat": runner}, metrics, busy_timeout_ms=BUSY_MS
    ) as manager:
        await manager.create_agent(AgentCreate(name="a", model="m"))
        first = await manager.submit("a", TaskCreate(prompt="gated"))
        for _ in range(1000):  # at most ~10 s
            if (await manager.wait_for_task(first.id, 0.01)).state == TaskState.RUNNING:
                break
        else:
            raise AssertionError("the gated task never started")
        blocker = sqlite3.connect(tmp_path / "bigthree.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # the write lock, as another process would take it
        runner.gate.set()
        await until(lambda: retries(metrics, "task_finished") >= 2, "retried outcome writes")
        assert (await manager.get_task(first.id)).state == TaskState.RUNNING
        with pytest.raises(StorageUnavailable):
            await manager.submit("a", TaskCreate(prompt="refused"))
        blocker.execute("ROLLBACK")
        blocker.close()

        outcome = await manager.wait_for_task(first.id, 30)
        assert outcome.state == TaskState.SUCCEEDED and outcome.result == "did: gated"
        second = await manager.submit("a", TaskCreate(prompt="next"))
        done = await manager.wait_for_task(second.id, 10)
        assert done.state == TaskState.SUCCEEDED and done.result == "did: next"
        stored = [t.prompt for t in await manager.list_tasks("a")]
        assert stored == ["next", "gated"]  # the refused submit was never stored
