"""The store's contract, held on every engine it supports (SQLite and PostgreSQL): the same
calls give the same answers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.agents.repository import (
    AgentRepository,
    TaskRepository,
    UsageDelta,
    UsageRepository,
)
from app.agents.schemas import AgentState, TaskState
from app.core.errors import Conflict
from app.events.repository import EventRepository
from app.events.schemas import Event, EventFilter
from app.providers.base import Usage
from app.store.engine import create_engine
from app.store.migrations import upgrade_database

BIG = 2**40  # past 32-bit integers: counters and seqs are 64-bit on every engine


@pytest.fixture
async def engine(store_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade_database(store_url)
    engine = create_engine(store_url)
    yield engine
    await engine.dispose()


def agent_values(agent_id: str, name: str, **changes: Any) -> dict[str, Any]:
    now = time.time()
    return {
        "id": agent_id,
        "name": name,
        "kind": "chat",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "instructions": "be brief",
        "fallbacks": [{"provider": "anthropic", "model": "claude-x"}],
        "stream": True,
        "workspace": None,
        "state": AgentState.IDLE,
        "created_at": now,
        "updated_at": now,
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": 0.0,
        "tasks_total": 0,
        **changes,
    }


def task_values(task_id: str, agent_id: str, order_key: int, **changes: Any) -> dict[str, Any]:
    return {
        "id": task_id,
        "agent_id": agent_id,
        "agent_name": "helper",
        "state": TaskState.QUEUED,
        "prompt": f"prompt {task_id}",
        "result": None,
        "error": None,
        "input_tokens": 0,
        "output_tokens": 0,
        "cached_input_tokens": 0,
        "cost_usd": 0.0,
        "attempts": 0,
        "timeout_s": 30.0,
        "created_at": time.time(),
        "started_at": None,
        "finished_at": None,
        "order_key": order_key,
        **changes,
    }


async def test_agents_names_are_unique_among_live_agents(engine: AsyncEngine) -> None:
    """A second live agent with a name is a Conflict; once deleted, the name is free."""
    repo = AgentRepository(engine)
    first = await repo.insert(agent_values("a1", "helper"))
    assert first.fallbacks[0].provider == "anthropic" and first.stream is True
    with pytest.raises(Conflict):
        await repo.insert(agent_values("a2", "helper"))
    await repo.update("a1", state=AgentState.DELETED, updated_at=time.time())
    await repo.insert(agent_values("a3", "helper"))
    live = await repo.live()
    assert [(a.id, a.name, a.stream) for a in live] == [("a3", "helper", True)]
    assert live[0].fallbacks == first.fallbacks


async def test_tasks_round_trip_in_order_with_outcomes(engine: AsyncEngine) -> None:
    """Tasks read back in order_key order with JSON errors, 64-bit counters and the agent's
    totals added by `finish` in the same transaction."""
    agents, tasks = AgentRepository(engine), TaskRepository(engine)
    await agents.insert(agent_values("a1", "helper"))
    for n in range(1, 4):
        await tasks.insert(task_values(f"t{n}", "a1", BIG + n))
    assert await tasks.max_order_key() == BIG + 3
    await tasks.update("t1", state=TaskState.RUNNING, started_at=time.time())
    error = {"type": "server_error", "message": "upstream said ✗", "details": {"status": 503}}
    await tasks.finish(
        "t1",
        {
            "state": TaskState.FAILED,
            "error": error,
            "finished_at": time.time(),
            "input_tokens": BIG,
            "output_tokens": 7,
            "cost_usd": 0.25,
            "attempts": 3,
            "files_changed": ["a.txt", "b/ü.txt"],
        },
        agent_id="a1",
        agent_state=AgentState.FAILED,
        usage=Usage(input_tokens=BIG, output_tokens=7),
        cost_usd=0.25,
    )
    done = await tasks.get("t1")
    assert done is not None and done.state == TaskState.FAILED
    assert done.error is not None and done.error.model_dump(exclude_none=True) == error
    assert done.usage.input_tokens == BIG and done.files_changed == ["a.txt", "b/ü.txt"]
    assert [t.id for t in await tasks.in_states([TaskState.QUEUED])] == ["t2", "t3"]
    assert [t.id for t in await tasks.for_agent("a1", limit=2)] == ["t3", "t2"]
    assert [t.id for t in await tasks.for_agent("a1", limit=5, state=TaskState.FAILED)] == ["t1"]
    (agent,) = await agents.live()
    assert (agent.state, agent.tasks_total, agent.usage.input_tokens) == ("failed", 3, BIG)
    assert agent.cost_usd == pytest.approx(0.25)
    assert await tasks.get("missing") is None


def event(seq: int, type_: str, agent: str | None = None, **payload: Any) -> Event:
    return Event(
        seq=seq, ts=time.time(), source="service", type=type_, agent=agent, payload=payload
    )


async def test_events_read_by_seq_with_filters_and_prune(engine: AsyncEngine) -> None:
    """Events come back in seq order after a seq, filtered by agent and type (exact or
    `prefix*`, with `_` and `%` taken literally), with JSON payloads intact; pruning keeps
    the newest."""
    repo = EventRepository(engine)
    assert await repo.max_seq() == 0
    await repo.insert_many(
        [
            event(BIG + 1, "task.queued", "a", nested={"list": [1, "two", None], "ü": "✓"}),
            event(BIG + 2, "task.running", "b"),
            event(BIG + 3, "task_x", "a"),
            event(BIG + 4, "llm.request", "a"),
        ]
    )
    assert await repo.max_seq() == BIG + 4
    everything = await repo.read(after_seq=0)
    assert [e.seq for e in everything] == [BIG + 1, BIG + 2, BIG + 3, BIG + 4]
    assert everything[0].payload == {"nested": {"list": [1, "two", None], "ü": "✓"}}
    tasks_of_a = await repo.read(after_seq=0, where=EventFilter(agent="a", type="task.*"))
    assert [e.seq for e in tasks_of_a] == [BIG + 1]
    assert [e.seq for e in await repo.read(after_seq=BIG + 1, until_seq=BIG + 3, limit=1)] == [
        BIG + 2
    ]
    assert await repo.prune(keep_last=2) == 2
    assert [e.seq for e in await repo.read(after_seq=0)] == [BIG + 3, BIG + 4]


async def test_usage_totals_add_up_per_model(engine: AsyncEngine) -> None:
    """Deltas for the same provider/model add up across calls (an upsert on each engine)."""
    repo = UsageRepository(engine)
    delta = UsageDelta()
    delta.add(Usage(input_tokens=10, output_tokens=5, cached_input_tokens=2), 0.5)
    await repo.add_many({("openai", "m1"): delta, ("gemini", "m2"): delta})
    await repo.add("openai", "m1", Usage(input_tokens=BIG, output_tokens=1), 0.25)
    totals = {(r["provider"], r["model"]): r for r in await repo.totals()}
    assert list(totals) == [("gemini", "m2"), ("openai", "m1")]
    m1 = totals[("openai", "m1")]
    assert (m1["calls"], m1["input_tokens"], m1["output_tokens"]) == (2, BIG + 10, 6)
    assert m1["cost_usd"] == pytest.approx(0.75)
