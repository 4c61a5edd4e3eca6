"""Reads of agents, tasks and usage totals. Only the AgentManager (and usage accounting)
calls this; every write goes through the store writer (app/store/writer.py) as typed rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.agents.schemas import (
    Agent,
    AgentState,
    BrowserOptions,
    ClaudeCodeOptions,
    Task,
    TaskState,
    UsageOut,
)
from app.store.schema import agents, tasks, usage_totals


def _usage(row: Any) -> UsageOut:
    i, o = int(row["input_tokens"]), int(row["output_tokens"])
    cached = int(row.get("cached_input_tokens", 0) or 0)
    return UsageOut(input_tokens=i, output_tokens=o, cached_input_tokens=cached, total_tokens=i + o)


def claude_code_options(row: Any) -> ClaudeCodeOptions | None:
    """A claude_code agent's settings, from the `options` column (None for other kinds)."""
    if row["kind"] != "claude_code":
        return None
    return ClaudeCodeOptions.model_validate(row.get("options") or {})


def browser_fields(row: Any) -> dict[str, Any]:
    """A browser agent's options (the `options` column) as its own fields; {} for others."""
    if row["kind"] != "browser":
        return {}
    browser = BrowserOptions.model_validate(row.get("options") or {})
    return {
        "allowed_origins": browser.allowed_origins,
        "start_url": browser.start_url,
        "screen": browser.screen,
    }


def agent_from_row(row: Any) -> Agent:
    cc = claude_code_options(row)
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
        allowed_tools=cc.allowed_tools if cc else None,
        disallowed_tools=cc.disallowed_tools if cc else None,
        permission_mode=cc.permission_mode if cc else None,
        max_turns=cc.max_turns if cc else None,
        session_id=row.get("session_id") if cc else None,
        **browser_fields(row),
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
        new_session=bool(row.get("new_session", False)),
    )


class AgentRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def live(self) -> list[Agent]:
        query = select(agents).where(agents.c.state != AgentState.DELETED).order_by(agents.c.name)
        async with self._engine.connect() as conn:
            return [agent_from_row(r) for r in (await conn.execute(query)).mappings()]


class TaskRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

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


class UsageRepository:
    """Cumulative usage and cost per provider/model, across restarts."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def totals(self) -> list[dict[str, Any]]:
        query = select(usage_totals).order_by(usage_totals.c.provider, usage_totals.c.model)
        async with self._engine.connect() as conn:
            return [dict(row) for row in (await conn.execute(query)).mappings()]
