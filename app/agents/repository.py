"""Persistence of agents and tasks. Only the AgentManager calls this."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.agents.schemas import Agent, AgentState, BrowserOptions, Task, TaskState, UsageOut
from app.core.errors import Conflict
from app.providers.base import Usage
from app.store.engine import write_transaction
from app.store.schema import agents, tasks, usage_totals


def _usage(row: Any) -> UsageOut:
    i, o = int(row["input_tokens"]), int(row["output_tokens"])
    cached = int(row.get("cached_input_tokens", 0) or 0)
    return UsageOut(input_tokens=i, output_tokens=o, cached_input_tokens=cached, total_tokens=i + o)


def _kind_fields(kind: str, options: Any) -> dict[str, Any]:
    """The typed options of a kind, as the Agent's own fields (`agents.options` JSON)."""
    if kind == "browser":
        browser = BrowserOptions.model_validate(options or {})
        return {
            "allowed_origins": browser.allowed_origins,
            "start_url": browser.start_url,
            "screen": browser.screen,
        }
    return {}


def agent_from_row(row: Any) -> Agent:
    return Agent(
        id=row["id"],
        name=row["name"],
        kind=row["kind"],
        provider=row["provider"],
        model=row["model"],
        instructions=row["instructions"],
        fallbacks=row["fallbacks"] or [],
        stream=bool(row.get("stream", False)),
        workspace=row.get("workspace"),
        **_kind_fields(row["kind"], row.get("options")),
        state=AgentState(row["state"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        usage=_usage(row),
        cost_usd=row["cost_usd"],
        tasks_total=row["tasks_total"],
    )


def task_from_row(row: Any) -> Task:
    started, finished = row["started_at"], row["finished_at"]
    return Task(
        id=row["id"],
        agent=row["agent_name"],
        agent_id=row["agent_id"],
        state=TaskState(row["state"]),
        prompt=row["prompt"],
        result=row["result"],
        error=row["error"],
        usage=_usage(row),
        cost_usd=row["cost_usd"],
        attempts=row["attempts"],
        timeout_s=row["timeout_s"],
        created_at=row["created_at"],
        started_at=started,
        finished_at=finished,
        queue_wait_s=None if started is None else max(0.0, started - row["created_at"]),
        run_s=None if started is None or finished is None else max(0.0, finished - started),
        files_changed=row.get("files_changed") or [],
    )


class AgentRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(self, values: dict[str, Any]) -> Agent:
        try:
            async with write_transaction(self._engine) as conn:
                await conn.execute(insert(agents).values(**values))
        except IntegrityError as exc:
            raise Conflict(f"an agent named {values['name']!r} already exists") from exc
        return agent_from_row(values)

    async def live(self) -> list[Agent]:
        query = select(agents).where(agents.c.state != AgentState.DELETED).order_by(agents.c.name)
        async with self._engine.connect() as conn:
            return [agent_from_row(r) for r in (await conn.execute(query)).mappings()]

    async def update(self, agent_id: str, **values: Any) -> None:
        async with write_transaction(self._engine) as conn:
            await conn.execute(update(agents).where(agents.c.id == agent_id).values(**values))


class TaskRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(self, values: dict[str, Any]) -> Task:
        async with write_transaction(self._engine) as conn:
            await conn.execute(insert(tasks).values(**values))
            await conn.execute(
                update(agents)
                .where(agents.c.id == values["agent_id"])
                .values(tasks_total=agents.c.tasks_total + 1)
            )
        return task_from_row(values)

    async def get(self, task_id: str) -> Task | None:
        async with self._engine.connect() as conn:
            row = (
                (await conn.execute(select(tasks).where(tasks.c.id == task_id))).mappings().first()
            )
        return task_from_row(row) if row else None

    async def for_agent(
        self, agent_id: str, *, limit: int, state: TaskState | None = None
    ) -> list[Task]:
        query = select(tasks).where(tasks.c.agent_id == agent_id)
        if state is not None:
            query = query.where(tasks.c.state == state)
        query = query.order_by(tasks.c.order_key.desc()).limit(limit)
        async with self._engine.connect() as conn:
            return [task_from_row(r) for r in (await conn.execute(query)).mappings()]

    async def recent(
        self, *, agent_name: str | None, state: TaskState | None, limit: int
    ) -> list[Task]:
        """The newest tasks, optionally of one agent name and/or in one state."""
        query = select(tasks)
        if agent_name is not None:
            query = query.where(tasks.c.agent_name == agent_name)
        if state is not None:
            query = query.where(tasks.c.state == state)
        query = query.order_by(tasks.c.order_key.desc()).limit(limit)
        async with self._engine.connect() as conn:
            return [task_from_row(r) for r in (await conn.execute(query)).mappings()]

    async def in_states(self, states: Sequence[TaskState]) -> list[Task]:
        query = select(tasks).where(tasks.c.state.in_(list(states))).order_by(tasks.c.order_key)
        async with self._engine.connect() as conn:
            return [task_from_row(r) for r in (await conn.execute(query)).mappings()]

    async def max_order_key(self) -> int:
        async with self._engine.connect() as conn:
            return int((await conn.execute(select(func.max(tasks.c.order_key)))).scalar() or 0)

    async def update(self, task_id: str, **values: Any) -> None:
        async with write_transaction(self._engine) as conn:
            await conn.execute(update(tasks).where(tasks.c.id == task_id).values(**values))

    async def finish(
        self,
        task_id: str,
        values: dict[str, Any],
        *,
        agent_id: str,
        agent_state: str,
        usage: Usage,
        cost_usd: float,
    ) -> None:
        """Record a task's outcome and add its usage to its agent, atomically."""
        now = values["finished_at"]
        async with write_transaction(self._engine) as conn:
            await conn.execute(update(tasks).where(tasks.c.id == task_id).values(**values))
            await conn.execute(
                update(agents)
                .where(agents.c.id == agent_id)
                .values(
                    state=agent_state,
                    input_tokens=agents.c.input_tokens + usage.input_tokens,
                    output_tokens=agents.c.output_tokens + usage.output_tokens,
                    cost_usd=agents.c.cost_usd + cost_usd,
                    updated_at=now,
                )
            )


@dataclass(slots=True)
class UsageDelta:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, usage: Usage, cost_usd: float) -> None:
        self.calls += 1
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cached_input_tokens += usage.cached_input_tokens
        self.cost_usd += cost_usd

    def merge(self, other: UsageDelta) -> None:
        self.calls += other.calls
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cached_input_tokens += other.cached_input_tokens
        self.cost_usd += other.cost_usd


class UsageRepository:
    """Cumulative usage and cost per provider/model, across restarts."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, provider: str, model: str, usage: Usage, cost_usd: float) -> None:
        """Add one call's usage to the running totals at once."""
        delta = UsageDelta()
        delta.add(usage, cost_usd)
        await self.add_many({(provider, model): delta})

    async def add_many(self, deltas: Mapping[tuple[str, str], UsageDelta]) -> None:
        """Add each (provider, model) delta to its running totals, in one transaction."""
        if not deltas:
            return
        t = usage_totals
        upsert = pg_insert if self._engine.dialect.name == "postgresql" else sqlite_insert
        async with write_transaction(self._engine) as conn:
            for (provider, model), d in deltas.items():
                statement = upsert(t).values(
                    provider=provider,
                    model=model,
                    calls=d.calls,
                    input_tokens=d.input_tokens,
                    output_tokens=d.output_tokens,
                    cached_input_tokens=d.cached_input_tokens,
                    cost_usd=d.cost_usd,
                )
                statement = statement.on_conflict_do_update(
                    index_elements=[t.c.provider, t.c.model],
                    set_={
                        "calls": t.c.calls + d.calls,
                        "input_tokens": t.c.input_tokens + d.input_tokens,
                        "output_tokens": t.c.output_tokens + d.output_tokens,
                        "cached_input_tokens": t.c.cached_input_tokens + d.cached_input_tokens,
                        "cost_usd": t.c.cost_usd + d.cost_usd,
                    },
                )
                await conn.execute(statement)

    async def totals(self) -> list[dict[str, Any]]:
        query = select(usage_totals).order_by(usage_totals.c.provider, usage_totals.c.model)
        async with self._engine.connect() as conn:
            return [dict(row) for row in (await conn.execute(query)).mappings()]
