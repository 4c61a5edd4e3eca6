"""Task reads come from indexes in task order: SQLite's plans for the repository's own
queries sort nothing and never take the state index for one agent's tasks. (Without the
order indexes, a chat agent's history — its ten newest succeeded tasks — was planned
through the state index, a scan of every succeeded task in the store, and `GET /v1/tasks`
sorted the whole table for each page: bench/README.md, run 15.)"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from app.agents.repository import TaskRepository
from app.agents.schemas import TaskState
from app.store.engine import create_engine
from app.store.migrations import upgrade_database

Read = Callable[[TaskRepository], Awaitable[object]]


async def _plans(tmp_path: Path, read: Read) -> list[str]:
    """The query plan of each SELECT that `read` makes on a database at the newest revision."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'plans.db'}"
    await upgrade_database(url)
    engine = create_engine(url)
    made: list[tuple[str, Any]] = []

    def grab(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            made.append((statement, params))

    event.listen(engine.sync_engine, "before_cursor_execute", grab)
    try:
        await read(TaskRepository(engine))
        event.remove(engine.sync_engine, "before_cursor_execute", grab)
        plans = []
        async with engine.connect() as conn:
            for statement, params in made:
                steps = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)
                plans.append(" | ".join(str(step[-1]) for step in steps))
    finally:
        await engine.dispose()
    assert plans, "the read made no query"
    return plans


@pytest.mark.parametrize(
    ("read", "index"),
    [
        (lambda r: r.for_agent("ag1", limit=10, state=TaskState.SUCCEEDED), "ix_tasks_agent_order"),
        (lambda r: r.for_agent("ag1", limit=50), "ix_tasks_agent_order"),
        (lambda r: r.recent(agent_name=None, state=None, limit=50), "ix_tasks_order"),
    ],
    ids=["chat history", "an agent's tasks", "newest tasks"],
)
async def test_task_reads_walk_an_index_in_task_order(
    tmp_path: Path, read: Read, index: str
) -> None:
    for plan in await _plans(tmp_path, read):
        assert index in plan, plan
        assert "TEMP B-TREE" not in plan, plan  # no sort of what the index found
        assert "ix_tasks_state" not in plan, plan
