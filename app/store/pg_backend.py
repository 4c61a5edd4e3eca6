"""The PostgreSQL write backend: the same typed writes as SQLite's, for several replicas.

One authority numbers the events of every replica: PostgreSQL, inside the inserting
transaction. The transaction first takes one advisory transaction lock (`EVENTS_LOCK_KEY`),
then numbers its events from the newest stored seq (`max(seq)`, one step down the primary
key's index). Writers of every replica so commit their events one at a time: seqs rise by
one, are committed in increasing order, and a seq taken by a transaction that rolls back is
given again (nobody saw it) — the same contract as SQLite's single writer. Because commit
order is seq order, a reader that sees seq N knows every seq below it is committed, which is
what lets each replica follow the log (app/events/follow.py) and resume streams without
gaps. (A PostgreSQL sequence would number events too, but it hands out values outside the
transaction: concurrent writers commit out of order, and a rollback leaves a hole a reader
cannot tell from a lost event.) The lock is held for one group commit, once per batch, not
per event. Task `order_key`s do come from a sequence (`tasks_order_seq`): there only the
order matters, so a client's second task for an agent, submitted after the first was
acknowledged, is ordered after it whichever replica took each.

Writes that race with another replica are conditional: a task's outcome is recorded only
while the task is unfinished (a survivor may have marked it `interrupted` after its lease
ran out), and its start only while it is queued or running.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from app.store.backend import RowConflict, StoreFailure
from app.store.rows import (
    AgentDeleted,
    AgentSessionSaved,
    EventsPruned,
    NewAgent,
    NewEvent,
    NewTask,
    TaskFinished,
    TaskStarted,
    UsageAdded,
    WriteOp,
)
from app.store.schema import agents, events, tasks, usage_totals

EVENTS_LOCK_KEY = 0x62696734  # "big4": one committer of events at a time
UNFINISHED = ("queued", "running")

_NEWEST = select(func.coalesce(func.max(events.c.seq), 0))
_ORDER_KEY = func.nextval("tasks_order_seq")


class PostgresWriteBackend:
    def __init__(self, url: str, *, lock_timeout_ms: int = 5000, pool_size: int = 2) -> None:
        self._url = url
        self._lock_timeout_ms = lock_timeout_ms
        self._pool_size = pool_size
        self._engine: AsyncEngine | None = None

    async def open(self) -> int:
        self._engine = create_async_engine(
            self._url,
            pool_size=self._pool_size,
            max_overflow=0,
            pool_pre_ping=True,
            # a lock held elsewhere fails the batch as `locked` (kept and retried by the
            # writer) instead of stalling it: the counterpart of SQLite's busy_timeout
            connect_args={"server_settings": {"lock_timeout": str(self._lock_timeout_ms)}},
        )
        try:
            async with self._engine.connect() as conn:
                return int((await conn.execute(select(func.max(events.c.seq)))).scalar() or 0)
        except (OperationalError, InterfaceError, OSError) as exc:
            raise _failure(exc) from exc

    async def commit(self, units: Sequence[Sequence[WriteOp]]) -> list[list[int]]:
        assert self._engine is not None, "open() first"
        try:
            async with self._engine.begin() as conn:
                return await self._apply(conn, units)
        except IntegrityError as exc:
            raise RowConflict(f"{type(exc.orig).__name__}: {exc.orig}") from exc
        except (OperationalError, InterfaceError, OSError) as exc:
            raise _failure(exc) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated or _sqlstate(exc) in _REASONS:
                raise _failure(exc) from exc
            # a value the database refuses (type, range)
            raise RowConflict(f"{type(exc.orig).__name__}: {exc.orig}") from exc

    async def probe(self) -> None:
        assert self._engine is not None, "open() first"
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    text("UPDATE alembic_version SET version_num = version_num WHERE false")
                )
        except (DBAPIError, OSError) as exc:
            raise _failure(exc) from exc

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    # --- one transaction --------------------------------------------------------------------

    async def _apply(
        self, conn: AsyncConnection, units: Sequence[Sequence[WriteOp]]
    ) -> list[list[int]]:
        count = sum(1 for unit in units for op in unit if isinstance(op, NewEvent))
        seq = await newest_seq_locked(conn) if count else 0
        assigned: list[list[int]] = []
        rows: list[dict[str, Any]] = []
        for unit in units:
            mine: list[int] = []
            for op in unit:
                if isinstance(op, NewEvent):
                    seq += 1
                    mine.append(seq)
                    rows.append(_event_row(seq, op))
                    continue
                if rows:  # keep the order the writes were queued in
                    await conn.execute(insert(events), rows)
                    rows = []
                await self._execute(conn, op)
            assigned.append(mine)
        if rows:
            await conn.execute(insert(events), rows)
        return assigned

    async def _execute(self, conn: AsyncConnection, op: WriteOp) -> None:
        if isinstance(op, TaskStarted):
            await conn.execute(
                update(tasks)
                .where(tasks.c.id == op.task_id, tasks.c.state.in_(UNFINISHED))
                .values(state="running", started_at=op.started_at)
            )
        elif isinstance(op, TaskFinished):
            await conn.execute(
                update(tasks)
                .where(tasks.c.id == op.task_id, tasks.c.state.in_(UNFINISHED))
                .values(
                    state=op.state,
                    result=op.result,
                    error=op.error,
                    input_tokens=op.input_tokens,
                    output_tokens=op.output_tokens,
                    cached_input_tokens=op.cached_input_tokens,
                    cost_usd=op.cost_usd,
                    attempts=op.attempts,
                    finished_at=op.finished_at,
                    files_changed=op.files_changed,
                )
            )
            if op.agent_id is not None:  # what was spent was spent, whatever the state says
                await conn.execute(
                    update(agents)
                    .where(agents.c.id == op.agent_id)
                    .values(
                        state=op.agent_state,
                        input_tokens=agents.c.input_tokens + op.input_tokens,
                        output_tokens=agents.c.output_tokens + op.output_tokens,
                        cost_usd=agents.c.cost_usd + op.cost_usd,
                        updated_at=op.finished_at,
                    )
                )
        elif isinstance(op, NewTask):
            await conn.execute(
                insert(tasks).values(
                    id=op.id,
                    agent_id=op.agent_id,
                    agent_name=op.agent_name,
                    state="queued",
                    prompt=op.prompt,
                    input_tokens=0,
                    output_tokens=0,
                    cached_input_tokens=0,
                    cost_usd=0.0,
                    attempts=0,
                    timeout_s=op.timeout_s,
                    created_at=op.created_at,
                    order_key=_ORDER_KEY,
                    new_session=op.new_session,
                )
            )
            await conn.execute(
                update(agents)
                .where(agents.c.id == op.agent_id)
                .values(tasks_total=agents.c.tasks_total + 1)
            )
        elif isinstance(op, UsageAdded):
            upsert = pg_insert(usage_totals).values(
                provider=op.provider,
                model=op.model,
                calls=op.calls,
                input_tokens=op.input_tokens,
                output_tokens=op.output_tokens,
                cached_input_tokens=op.cached_input_tokens,
                cost_usd=op.cost_usd,
            )
            await conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=[usage_totals.c.provider, usage_totals.c.model],
                    set_={
                        name: usage_totals.c[name] + upsert.excluded[name]
                        for name in (
                            "calls",
                            "input_tokens",
                            "output_tokens",
                            "cached_input_tokens",
                            "cost_usd",
                        )
                    },
                )
            )
        elif isinstance(op, NewAgent):
            await conn.execute(insert(agents).values(op.as_stored()))
        elif isinstance(op, AgentSessionSaved):
            await conn.execute(
                update(agents)
                .where(agents.c.id == op.agent_id)
                .values(session_id=op.session_id)
            )
        elif isinstance(op, AgentDeleted):
            await conn.execute(
                update(agents)
                .where(agents.c.id == op.agent_id)
                .values(state="deleted", updated_at=op.at)
            )
        elif isinstance(op, EventsPruned):
            newest = (await conn.execute(select(func.max(events.c.seq)))).scalar() or 0
            await conn.execute(events.delete().where(events.c.seq <= newest - op.keep_last))
        else:  # pragma: no cover - NewEvent is batched by _apply
            raise TypeError(f"unknown write {op!r}")


async def newest_seq_locked(conn: AsyncConnection) -> int:
    """Take the events lock for this transaction and return the newest stored seq: the
    transaction numbers its events from there."""
    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": EVENTS_LOCK_KEY})
    return int((await conn.execute(_NEWEST)).scalar_one())


async def append_events(
    conn: AsyncConnection, new: Sequence[NewEvent], *, newest: int | None = None
) -> list[int]:
    """Store `new` in this transaction (which must write nothing else to `events`); return
    their seqs. `newest`: what `newest_seq_locked` returned, if the transaction took the
    lock already."""
    if not new:
        return []
    base = await newest_seq_locked(conn) if newest is None else newest
    seqs = list(range(base + 1, base + 1 + len(new)))
    await conn.execute(
        insert(events), [_event_row(seq, op) for seq, op in zip(seqs, new, strict=True)]
    )
    return seqs


def _event_row(seq: int, op: NewEvent) -> dict[str, Any]:
    return {
        "seq": seq,
        "ts": op.ts,
        "source": op.source,
        "type": op.type,
        "agent": op.agent,
        "task_id": op.task_id,
        "session_id": op.session_id,
        "payload": json.loads(op.payload_json),
    }


# SQLSTATEs that mean "the store cannot take writes now" rather than "this row is refused"
_REASONS = {
    "55P03": "locked",  # lock_not_available (lock_timeout)
    "40P01": "locked",  # deadlock_detected
    "40001": "locked",  # serialization_failure
    "53100": "disk_full",
    "25006": "read_only",  # read_only_sql_transaction (a standby, default_transaction_read_only)
    "57P01": "unavailable",  # admin_shutdown
    "57P03": "unavailable",  # cannot_connect_now (starting up)
}


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of the driver's error under SQLAlchemy's wrapper, if any."""
    seen: BaseException | None = getattr(exc, "orig", None) or exc
    while seen is not None:
        state = getattr(seen, "sqlstate", None)
        if isinstance(state, str):
            return state
        seen = seen.__cause__
    return None


def _failure(exc: BaseException) -> StoreFailure:
    orig = getattr(exc, "orig", None) or exc
    reason = _REASONS.get(_sqlstate(exc) or "", "unavailable")
    return StoreFailure(reason, f"{type(orig).__name__}: {orig}"[:300])
