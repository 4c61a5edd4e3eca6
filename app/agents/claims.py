"""Task claims on a shared PostgreSQL database: which replica runs which task, and for how long.

The database is the queue. A replica with a free slot claims the oldest queued task that
heads its agent's FIFO — its agent's first unfinished task by `order_key`, so an agent whose
head is running (here or on another replica) is skipped and its tasks run one at a time, in
order, across replicas. The claim is a row lock (`SELECT ... FOR UPDATE SKIP LOCKED`): two
replicas never claim the same task, and neither waits for the other. The claimed task turns
`running` with `claimed_by` and a lease (`lease_expires_at`, in the database's clock, so
replicas' clocks do not matter) that the owner's heartbeat renews. A replica that dies stops
renewing; once its leases run out, any replica's sweep marks those tasks `interrupted` (the
single-process restart rule: a partial run may have had effects). Queued tasks belong to no
replica, so the survivors simply go on claiming them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, func, literal_column, select, update
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncEngine

from app.agents.schemas import AgentState, TaskState
from app.store.pg_backend import append_events, newest_seq_locked
from app.store.rows import NewEvent
from app.store.schema import agents, tasks

EventFor = Callable[["ClaimedRow"], NewEvent]

# the database's clock, in epoch seconds like every time column
DB_NOW = func.extract("epoch", func.clock_timestamp())


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    """A task row as claimed or expired (the columns the manager needs)."""

    values: Mapping[str, Any]

    @property
    def id(self) -> str:
        return str(self.values["id"])


def _candidate() -> Select[tuple[str]]:
    """The oldest queued task that heads its live agent's FIFO, row-locked (built once)."""
    unfinished = tasks.c.state.in_([TaskState.QUEUED, TaskState.RUNNING])
    live_agents = select(agents.c.id).where(agents.c.state != AgentState.DELETED)
    heads = (
        select(tasks.c.id, tasks.c.state)
        .where(unfinished)
        .order_by(tasks.c.agent_id, tasks.c.order_key)
        .ext(distinct_on(tasks.c.agent_id))
        .cte("heads")
    )
    return (
        select(tasks.c.id)
        .join(heads, heads.c.id == tasks.c.id)
        # re-checked on the locked row's newest version: a head claimed by another replica
        # since this statement's snapshot no longer qualifies
        .where(heads.c.state == TaskState.QUEUED, tasks.c.state == TaskState.QUEUED)
        .where(tasks.c.agent_id.in_(live_agents))
        .order_by(tasks.c.order_key)
        .limit(1)
        .with_for_update(of=tasks, skip_locked=True)
    )


_CANDIDATE = _candidate()


class TaskClaims:
    def __init__(self, engine: AsyncEngine, *, replica_id: str, lease_s: float) -> None:
        self._engine = engine
        self.replica_id = replica_id
        self.lease_s = lease_s

    async def claim_next(self) -> ClaimedRow | None:
        """Claim the oldest task heading its agent's queue; None when there is none free."""
        async with self._engine.begin() as conn:
            task_id = (await conn.execute(_CANDIDATE)).scalar()
            if task_id is None:
                return None
            row = (
                (
                    await conn.execute(
                        update(tasks)
                        .where(tasks.c.id == task_id)
                        .values(
                            state=TaskState.RUNNING,
                            claimed_by=self.replica_id,
                            lease_expires_at=DB_NOW + self.lease_s,
                            started_at=DB_NOW,
                        )
                        .returning(*tasks.c)
                    )
                )
                .mappings()
                .one()
            )
        return ClaimedRow(dict(row))

    async def renew(self) -> list[str]:
        """Extend the lease of every task this replica runs; return the ids of those whose
        cancel was requested (by a replica that could not reach this one). A row another
        transaction holds (its outcome being written) is skipped, never waited for: no
        deadlock with the writer, and a finishing task needs no lease."""
        mine = (
            select(tasks.c.id)
            .where(tasks.c.claimed_by == self.replica_id, tasks.c.state == TaskState.RUNNING)
            .with_for_update(skip_locked=True)
        )
        statement = (
            update(tasks)
            .where(tasks.c.id.in_(mine.scalar_subquery()))
            .values(lease_expires_at=DB_NOW + self.lease_s)
            .returning(tasks.c.id, tasks.c.cancel_requested)
        )
        async with self._engine.begin() as conn:
            rows = (await conn.execute(statement)).all()
        return [task_id for task_id, cancel in rows if cancel]

    async def request_cancel(self, task_id: str) -> bool:
        """Mark a running task for cancelling by its owner; False if it no longer runs."""
        statement = (
            update(tasks)
            .where(tasks.c.id == task_id, tasks.c.state == TaskState.RUNNING)
            .values(cancel_requested=True)
        )
        async with self._engine.begin() as conn:
            return bool((await conn.execute(statement)).rowcount)

    async def expire(self, *, error: Mapping[str, Any], event: EventFor) -> list[int]:
        """Mark `interrupted` every running task whose lease ran out (its replica died),
        with each one's `event(row)` in the same transaction; return the events' seqs."""
        statement = (
            update(tasks)
            .where(
                and_(
                    tasks.c.state == TaskState.RUNNING,
                    tasks.c.lease_expires_at < DB_NOW,
                )
            )
            .values(state=TaskState.INTERRUPTED, error=dict(error), finished_at=DB_NOW)
            .returning(*tasks.c)
        )
        return await self._finish(statement, event)

    async def cancel_queued(
        self,
        *,
        error: Mapping[str, Any],
        event: EventFor,
        task_id: str | None = None,
        agent_id: str | None = None,
    ) -> list[int]:
        """Mark `cancelled` the task (or every task of the agent) still queued — not one a
        replica claimed meanwhile — with their events; return the events' seqs."""
        statement = update(tasks).where(tasks.c.state == TaskState.QUEUED)
        if task_id is not None:
            statement = statement.where(tasks.c.id == task_id)
        if agent_id is not None:
            statement = statement.where(tasks.c.agent_id == agent_id)
        statement = statement.values(
            state=TaskState.CANCELLED, error=dict(error), finished_at=DB_NOW
        ).returning(*tasks.c)
        return await self._finish(statement, event)

    async def _finish(self, statement: Any, event: EventFor) -> list[int]:
        async with self._engine.begin() as conn:
            # the events lock first, as the writer takes it: the same lock order, no deadlock
            base = await newest_seq_locked(conn)
            rows = (await conn.execute(statement)).mappings().all()
            new = [event(ClaimedRow(dict(row))) for row in rows]
            return await append_events(conn, new, newest=base)

    async def queued_count(self, agent_id: str | None = None) -> int:
        """How many tasks wait to be claimed: the agent's, or (None) every agent's."""
        statement = select(func.count()).where(tasks.c.state == TaskState.QUEUED)
        if agent_id is not None:
            statement = statement.where(tasks.c.agent_id == agent_id)
        async with self._engine.connect() as conn:
            return int((await conn.execute(statement)).scalar() or 0)

    async def db_now(self) -> float:
        async with self._engine.connect() as conn:
            return float((await conn.execute(select(literal_column("1") * DB_NOW))).scalar() or 0)
