"""Task claims on a real PostgreSQL database: per-agent FIFO, one task per agent at a time
across claimers, never a task twice, leases that expire when not renewed."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.agents.claims import ClaimedRow, TaskClaims
from app.agents.schemas import TaskState
from app.store.engine import create_engine
from app.store.migrations import upgrade_database
from app.store.rows import NewAgent, NewEvent
from app.store.schema import agents, events, tasks


async def add_tasks(engine: AsyncEngine, plan: list[tuple[str, int]]) -> None:
    """Queue one task per (agent, order_key), ids `<agent>-<order_key>` (the agents too)."""
    names = sorted({agent for agent, _ in plan})
    agent_rows = [
        NewAgent(n, n, "chat", "openai", "m", "", [], False, None, None, "idle", 1.0).as_stored()
        for n in names
    ]
    async with engine.begin() as conn:
        await conn.execute(insert(agents), agent_rows)
    rows = [
        {
            "id": f"{agent}-{key}",
            "agent_id": agent,
            "agent_name": agent,
            "state": TaskState.QUEUED,
            "prompt": "p",
            "input_tokens": 0,
            "output_tokens": 0,
            "cached_input_tokens": 0,
            "cost_usd": 0.0,
            "attempts": 0,
            "timeout_s": 30.0,
            "created_at": time.time(),
            "order_key": key,
        }
        for agent, key in plan
    ]
    async with engine.begin() as conn:
        await conn.execute(insert(tasks), rows)


async def finish(engine: AsyncEngine, task_id: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(tasks).where(tasks.c.id == task_id).values(state=TaskState.SUCCEEDED)
        )


async def state_of(engine: AsyncEngine, task_id: str) -> tuple[str, str | None]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(tasks.c.state, tasks.c.claimed_by).where(tasks.c.id == task_id)
            )
        ).one()
    return row[0], row[1]


async def test_claims_take_each_agents_head_in_order(engine: AsyncEngine) -> None:
    """The oldest queued task heading its agent's FIFO is claimed; an agent whose head runs
    is skipped until it finishes, then its next task comes; a deleted agent's never."""
    await add_tasks(engine, [("a", 1), ("b", 2), ("a", 3), ("b", 4), ("a", 5)])
    claims = TaskClaims(engine, replica_id="r1", lease_s=30)
    first, second = await claims.claim_next(), await claims.claim_next()
    assert first is not None and second is not None
    assert (first.id, second.id) == ("a-1", "b-2")
    assert first.values["claimed_by"] == "r1" and first.values["state"] == "running"
    assert first.values["lease_expires_at"] > first.values["started_at"]
    assert await claims.claim_next() is None  # both heads are running
    await finish(engine, "b-2")
    third = await claims.claim_next()
    assert third is not None and third.id == "b-4"
    await finish(engine, "a-1")  # a-3 heads agent a's queue now, but a is deleted
    async with engine.begin() as conn:
        await conn.execute(update(agents).where(agents.c.id == "a").values(state="deleted"))
    assert await claims.claim_next() is None


async def test_concurrent_claimers_never_double_run_and_keep_each_agents_order(
    pg_url: str,
) -> None:
    """Six claimers on three engines (three 'replicas') drain 20 agents x 8 tasks: every
    task is claimed exactly once, each agent's tasks in order and never two at once."""
    await upgrade_database(pg_url)
    engines = [create_engine(pg_url) for _ in range(3)]
    agents = [f"agent{n:02d}" for n in range(20)]
    plan = [
        (agent, 1 + round_ * len(agents) + i)
        for round_ in range(8)
        for i, agent in enumerate(agents)
    ]
    await add_tasks(engines[0], plan)
    clock = itertools.count()
    claimed: dict[str, list[tuple[str, str]]] = defaultdict(list)  # task -> [(replica, ..)]
    spans: dict[str, list[tuple[int, int, str]]] = defaultdict(list)  # agent -> spans

    async def claimer(name: str, engine: AsyncEngine) -> None:
        claims = TaskClaims(engine, replica_id=name, lease_s=30)
        idle = 0
        while idle < 20:
            row = await claims.claim_next()
            if row is None:
                idle += 1
                await asyncio.sleep(0.01)  # let the running heads finish
                continue
            idle = 0
            start = next(clock)
            claimed[row.id].append((name, row.values["agent_id"]))
            await asyncio.sleep(0)  # "run" it: give the others a turn meanwhile
            spans[row.values["agent_id"]].append((start, next(clock), row.id))
            await finish(engine, row.id)

    try:
        await asyncio.gather(*(claimer(f"r{n}", engines[n % 3]) for n in range(6)))
    finally:
        for engine in engines:
            await engine.dispose()
    assert sorted(claimed) == sorted(f"{a}-{k}" for a, k in plan)
    assert all(len(v) == 1 for v in claimed.values())
    for agent, agent_spans in spans.items():
        in_order = sorted(agent_spans)
        keys = [int(task_id.rsplit("-", 1)[1]) for _, _, task_id in in_order]
        assert keys == sorted(keys), agent
        for (_, end, _), (start, _, _) in itertools.pairwise(in_order):
            assert end < start, f"{agent}: two tasks at once"
    assert len({replica for v in claimed.values() for replica, _ in v}) > 1


async def test_leases_expire_unless_renewed(engine: AsyncEngine) -> None:
    """A claim renewed by its owner's heartbeat holds; once the owner stops renewing (it
    died), another replica's sweep marks the task interrupted — once."""
    await add_tasks(engine, [("a", 1), ("b", 2)])
    owner = TaskClaims(engine, replica_id="owner", lease_s=0.3)
    survivor = TaskClaims(engine, replica_id="survivor", lease_s=30)
    kept, lost = await owner.claim_next(), await owner.claim_next()
    assert kept is not None and lost is not None
    error = {"type": "interrupted", "message": "its replica stopped"}

    def event(row: ClaimedRow) -> NewEvent:
        payload = {"replica": row.values["claimed_by"]}
        return NewEvent(1.0, "service", "task.interrupted", None, row.id, None, payload, "{}")

    deadline = time.monotonic() + 10
    expired: list[int] = []
    while not expired and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        async with engine.begin() as conn:  # the owner renews only `kept`
            await conn.execute(
                update(tasks)
                .where(tasks.c.id == kept.id)
                .values(lease_expires_at=await owner.db_now() + 30)
            )
        expired = await survivor.expire(error=error, event=event)
    assert expired == [1]  # one task, its event numbered with the log's
    assert await state_of(engine, lost.id) == ("interrupted", "owner")
    assert await state_of(engine, kept.id) == ("running", "owner")
    async with engine.connect() as conn:
        (stored,) = (await conn.execute(select(events.c.task_id, events.c.type))).all()
        (stored_error,) = (
            await conn.execute(select(tasks.c.error).where(tasks.c.id == lost.id))
        ).one()
    assert tuple(stored) == (lost.id, "task.interrupted") and stored_error == error
    assert await survivor.expire(error=error, event=event) == []


async def test_a_cancel_request_reaches_the_owner_through_its_heartbeat(
    engine: AsyncEngine,
) -> None:
    """A cancel requested for a task running elsewhere is returned by the owner's next
    renewal; a task that no longer runs cannot be marked."""
    await add_tasks(engine, [("a", 1)])
    owner = TaskClaims(engine, replica_id="owner", lease_s=30)
    row = await owner.claim_next()
    assert row is not None
    assert await owner.renew() == []
    other = TaskClaims(engine, replica_id="other", lease_s=30)
    assert await other.request_cancel(row.id) is True
    assert await owner.renew() == [row.id]
    await finish(engine, row.id)
    assert await other.request_cancel(row.id) is False
