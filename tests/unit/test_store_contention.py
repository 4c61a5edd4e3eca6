"""Store writes under contention: a real SQLite file, locked for real by another connection."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from app.agents.kinds.base import RunContext
from app.agents.schemas import Agent, AgentCreate, AgentState, Task, TaskCreate, TaskState
from app.core.config import Settings
from app.core.metrics import Metrics
from app.store import transient
from app.store.engine import create_engine, write_transaction
from tests.support.manager import running_manager

BUSY_MS = 50  # short, so that a lock held a little longer already refuses a writer


async def until(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    """Poll `condition` on the event loop until it holds."""
    give_up = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def test_queued_writers_outlast_a_short_busy_timeout(tmp_path: Path) -> None:
    """Eight writers that each hold their transaction across event-loop turns all commit:
    queued in-process, none waits on SQLite's lock past busy_timeout (left to SQLite, the
    later ones fail with 'database is locked')."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}", busy_timeout_ms=BUSY_MS)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (writer INTEGER, step INTEGER)"))

    async def writer(n: int) -> None:
        async with write_transaction(engine) as conn:
            await conn.execute(text("INSERT INTO t VALUES (:n, 1)"), {"n": n})
            await asyncio.sleep(0.03)  # a busy loop between the transaction's statements
            await conn.execute(text("INSERT INTO t VALUES (:n, 2)"), {"n": n})

    await asyncio.gather(*(writer(n) for n in range(8)))
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one()
    await engine.dispose()
    assert rows == 16


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


@pytest.mark.parametrize("released", [True, False], ids=["lock-released", "lock-held"])
async def test_a_locked_store_neither_loses_a_result_nor_stops_the_agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, released: bool
) -> None:
    """Another process holds the write lock as a task finishes. Released while the outcome
    write is being retried, the result is stored as if nothing happened; held past every
    retry, waiters are released and the agent's worker goes on with its next task."""
    waits = (0.05,) * 200 if released else (0.01, 0.01)
    monkeypatch.setattr(transient, "STORE_RETRY_WAITS_S", waits)
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    engine = create_engine(settings.resolved_database_url, busy_timeout_ms=BUSY_MS)
    runner = GateRunner()
    metrics = Metrics()
    async with running_manager(settings, engine, {"chat": runner}, metrics) as manager:
        await manager.create_agent(AgentCreate(name="a", model="m"))
        first = await manager.submit("a", TaskCreate(prompt="gated"))
        for _ in range(1000):  # at most ~10 s
            if (await manager.wait_for_task(first.id, 0.01)).state == TaskState.RUNNING:
                break
        else:
            raise AssertionError("the gated task never started")
        blocker = sqlite3.connect(tmp_path / "bigthree.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # the write lock, as another process would take it
        waiting = asyncio.create_task(manager.wait_for_task(first.id, 30))
        runner.gate.set()
        if released:
            await until(lambda: retries(metrics, "task_finished") >= 1, "a retried write")
            blocker.execute("ROLLBACK")
        outcome = await waiting
        if not released:
            blocker.execute("ROLLBACK")
        blocker.close()

        if released:
            assert outcome.state == TaskState.SUCCEEDED and outcome.result == "did: gated"
        else:
            assert outcome.state == TaskState.RUNNING  # stored row untouched; see recovery
            assert retries(metrics, "task_finished") == len(waits)
            assert manager.get_agent("a").state == AgentState.IDLE
        second = await manager.submit("a", TaskCreate(prompt="next"))
        done = await manager.wait_for_task(second.id, 10)
        assert done.state == TaskState.SUCCEEDED and done.result == "did: next"
