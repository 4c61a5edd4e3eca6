"""AgentDirectory: every replica's view of the live agents, kept true from the shared store.

With several replicas an agent's state changes on whichever replica ran its last task, so
no replica may answer from what it alone saw. The directory holds each live agent as the
database has it — its row, how many of its tasks are queued and which one runs — and is
refreshed from the event log: every event about an agent (the log follower hands each
stored event to `refresh` before any subscriber or reader sees it) re-reads that agent, in
one query per batch. Reads are then as fresh as the follower, and `AgentManager.settle()`
(the follower catching up to the log's head) makes them as fresh as the database.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.agents.repository import agent_from_row
from app.agents.schemas import Agent, AgentState, TaskState
from app.events.schemas import LiveEvent
from app.store.schema import agents, tasks


class AgentDirectory:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._agents: dict[str, Agent] = {}

    def get(self, name: str) -> Agent | None:
        return self._agents.get(name)

    def all(self) -> list[Agent]:
        return [self._agents[name] for name in sorted(self._agents)]

    def __len__(self) -> int:
        return len(self._agents)

    async def fetch(self, name: str) -> Agent | None:
        """Read one live agent now (a task of it was claimed before its event was seen)."""
        found = await self._read({name})
        if found:
            self._agents[name] = found[0]
            return found[0]
        return None

    async def load(self) -> None:
        """Read every live agent."""
        self._agents = {a.name: a for a in await self._read(None)}

    async def refresh(self, events: Iterable[LiveEvent]) -> None:
        """Re-read the agents these events are about."""
        names = {e.agent for e in events if e.agent and e.type.startswith(("agent.", "task."))}
        if not names:
            return
        fresh = {a.name: a for a in await self._read(names)}
        for name in names:
            agent = fresh.get(name)
            if agent is None:
                self._agents.pop(name, None)  # deleted
            else:
                self._agents[name] = agent

    async def _read(self, names: set[str] | None) -> list[Agent]:
        queued = (
            select(func.count())
            .where(and_(tasks.c.agent_id == agents.c.id, tasks.c.state == TaskState.QUEUED))
            .scalar_subquery()
        )
        running = (
            select(tasks.c.id)
            .where(and_(tasks.c.agent_id == agents.c.id, tasks.c.state == TaskState.RUNNING))
            .limit(1)
            .scalar_subquery()
        )
        query = select(agents, queued.label("queued"), running.label("running")).where(
            agents.c.state != AgentState.DELETED
        )
        if names is not None:
            query = query.where(agents.c.name.in_(sorted(names)))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        found = []
        for row in rows:
            agent = agent_from_row(row)
            busy = row["running"] is not None
            found.append(
                agent.model_copy(
                    update={
                        "queued_tasks": int(row["queued"]),
                        "running_task_id": row["running"],
                        "state": AgentState.BUSY if busy else agent.state,
                    }
                )
            )
        return found
