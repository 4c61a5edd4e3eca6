"""AgentDirectory on PostgreSQL: each replica's agent view follows the shared store."""

from __future__ import annotations

import time

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.agents.directory import AgentDirectory
from app.agents.schemas import AgentState
from app.events.schemas import LiveEvent
from app.store.pg_backend import PostgresWriteBackend
from app.store.rows import AgentDeleted, NewAgent, NewTask, TaskFinished
from app.store.schema import tasks


def about(agent: str, type_: str) -> LiveEvent:
    return LiveEvent(1, time.time(), "service", type_, agent, None, None, {}, "{}")


def agent(agent_id: str, name: str) -> NewAgent:
    return NewAgent(agent_id, name, "chat", "openai", "m", "", [], False, None, None, "idle", 1.0)


async def test_the_directory_follows_what_other_replicas_store(engine: AsyncEngine) -> None:
    """Agents created, queued for, running and deleted by "another replica" (straight in
    the store) show in the directory once an event about them is refreshed — with queue
    length, running task and busy state — and an event about another agent changes
    nothing else."""
    directory = AgentDirectory(engine)
    other = PostgresWriteBackend(engine.url.render_as_string(hide_password=False))
    await other.open()
    await other.commit([[agent("a1", "alpha")]])
    await directory.load()
    assert [a.name for a in directory.all()] == ["alpha"]
    await other.commit([[agent("b1", "beta")]])
    await other.commit([[NewTask(f"t{n}", "b1", "beta", "p", 30.0, 1.0, 0)] for n in (1, 2)])
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
    await other.commit([[TaskFinished("t1", "succeeded", 2.0), AgentDeleted("b1", 3.0)]])
    await other.close()
    await directory.refresh([about("beta", "agent.deleted")])
    assert [a.name for a in directory.all()] == ["alpha"]
