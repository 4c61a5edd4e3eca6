"""AgentDirectory on PostgreSQL: each replica's agent view follows the shared store."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.agents.directory import AgentDirectory
from app.agents.repository import AgentRepository, TaskRepository
from app.agents.schemas import AgentState, TaskState
from app.events.schemas import Event
from app.store.engine import create_engine
from app.store.migrations import upgrade_database
from app.store.schema import tasks
from tests.integration.test_store_contract import agent_values, task_values


@pytest.fixture
async def engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade_database(pg_url)
    engine = create_engine(pg_url)
    yield engine
    await engine.dispose()


def about(agent: str, type_: str) -> Event:
    return Event(seq=1, ts=time.time(), source="service", type=type_, agent=agent)


async def test_the_directory_follows_what_other_replicas_store(engine: AsyncEngine) -> None:
    """Agents created, queued for, running and deleted by "another replica" (straight in
    the store) show in the directory once an event about them is refreshed — with queue
    length, running task and busy state — and an event about another agent changes
    nothing else."""
    directory = AgentDirectory(engine)
    agents, task_repo = AgentRepository(engine), TaskRepository(engine)
    await agents.insert(agent_values("a1", "alpha"))
    await directory.load()
    assert [a.name for a in directory.all()] == ["alpha"]
    await agents.insert(agent_values("b1", "beta"))
    for n in (1, 2):
        await task_repo.insert(task_values(f"t{n}", "b1", n))
    assert directory.get("beta") is None  # not yet told
    await directory.refresh([about("beta", "agent.created")])
    beta = directory.get("beta")
    assert beta is not None and (beta.queued_tasks, beta.tasks_total) == (2, 2)
    async with engine.begin() as conn:
        await conn.execute(update(tasks).where(tasks.c.id == "t1").values(state="running"))
    await directory.refresh([about("beta", "task.running"), about("alpha", "other.thing")])
    beta = directory.get("beta")
    assert beta is not None
    assert (beta.state, beta.queued_tasks, beta.running_task_id) == (AgentState.BUSY, 1, "t1")
    await task_repo.update("t1", state=TaskState.SUCCEEDED)
    await agents.update("b1", state=AgentState.DELETED)
    await directory.refresh([about("beta", "agent.deleted")])
    assert [a.name for a in directory.all()] == ["alpha"]
