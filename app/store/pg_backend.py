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

from collections.abc import Callable, Sequence
from itertools import groupby
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import bindparam, func, literal_column, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from app.store.backend import RowConflict, StoreFailure
from app.store.bind_values import (
    agent_values,
    event_row,
    evicted_values,
    finished_values,
    task_values,
    usage_values,
)
from app.store.rows import (
    AgentDeleted,
    AgentSessionSaved,
    ArtifactsEvicted,
    EventsPruned,
    NewAgent,
    NewArtifact,
    NewEvent,
    NewTask,
    TaskFinished,
    TaskStarted,
    UsageAdded,
    WriteOp,
)
from app.store.schema import agents, events, tasks
from app.store.statements import insert_row, prepare, prepare_shared_writes

EVENTS_LOCK_KEY = 0x62696734  # "big4": one committer of events at a time
UNFINISHED = text("state IN ('queued', 'running')")

_NEWEST = select(func.coalesce(func.max(events.c.seq), 0))

# compiled once, run with asyncpg's executemany (one round trip for all the rows of a batch,
# no per-statement compilation): the write path is the hot path
_DIALECT = postgresql.dialect(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]
_SHARED = prepare_shared_writes(_DIALECT, pg_insert, finish_only_if=(UNFINISHED,))
_INSERT_TASK = prepare(
    insert_row(tasks).values(order_key=literal_column("nextval('tasks_order_seq')")), _DIALECT
)
_DELETE_AGENT = prepare(
    update(agents)
    .where(agents.c.id == bindparam("agent_id"))
    .values(state=literal_column("'deleted'"), updated_at=bindparam("at")),
    _DIALECT,
)
_START_TASK = prepare(
    update(tasks)
    .where(tasks.c.id == bindparam("task_id"), UNFINISHED)
    .values(state=literal_column("'running'"), started_at=bindparam("started_at")),
    _DIALECT,
)


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
                return int((await conn.execute(_NEWEST)).scalar_one())
        except (OperationalError, InterfaceError, OSError) as exc:
            raise _failure(exc) from exc

    def commit_now(self, units: Sequence[Sequence[WriteOp]]) -> list[list[int]] | None:
        return None  # every commit is a round trip to the server

    async def commit(self, units: Sequence[Sequence[WriteOp]]) -> list[list[int]]:
        assert self._engine is not None, "open() first"
        try:
            async with self._engine.begin() as conn:
                return await self._apply(conn, units)
        except (IntegrityError, asyncpg.IntegrityConstraintViolationError) as exc:
            orig = getattr(exc, "orig", None) or exc
            raise RowConflict(f"{type(orig).__name__}: {orig}") from exc
        except (OperationalError, InterfaceError, OSError, asyncpg.InterfaceError) as exc:
            raise _failure(exc) from exc
        except (DBAPIError, asyncpg.PostgresError) as exc:
            invalidated = getattr(exc, "connection_invalidated", False)
            if invalidated or _sqlstate(exc) in _REASONS:
                raise _failure(exc) from exc
            orig = getattr(exc, "orig", None) or exc  # a value the database refuses
            raise RowConflict(f"{type(orig).__name__}: {orig}") from exc

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
        # first statement through SQLAlchemy: it begins the transaction the raw driver
        # calls below run in (and takes the events lock every committer takes first)
        seq = await newest_seq_locked(conn)
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        assigned: list[list[int]] = []
        event_rows: list[tuple[object, ...]] = []
        others: list[WriteOp] = []
        for unit in units:
            mine: list[int] = []
            for op in unit:
                if isinstance(op, NewEvent):
                    seq += 1
                    mine.append(seq)
                    event_rows.append(event_row(seq, op))
                else:
                    others.append(op)
            assigned.append(mine)
        # rows of other tables in the order they were queued, each run of one kind at once
        # (events touch no other table, so they can go last)
        for kind, run in groupby(others, key=type):
            await _RUNS[kind](driver, list(run))
        if event_rows:
            await driver.executemany(_SHARED.insert_event.sql, event_rows)
        return assigned


Run = Callable[[Any, list[Any]], Any]


async def _new_agents(driver: Any, ops: list[NewAgent]) -> None:
    insert = _SHARED.insert_agent
    await driver.executemany(insert.sql, [insert.params(agent_values(op)) for op in ops])


async def _sessions(driver: Any, ops: list[AgentSessionSaved]) -> None:
    save = _SHARED.save_session
    await driver.executemany(
        save.sql, [save.params({"agent_id": o.agent_id, "session_id": o.session_id}) for o in ops]
    )


async def _deleted(driver: Any, ops: list[AgentDeleted]) -> None:
    await driver.executemany(
        _DELETE_AGENT.sql,
        [_DELETE_AGENT.params({"agent_id": o.agent_id, "at": o.at}) for o in ops],
    )


async def _new_tasks(driver: Any, ops: list[NewTask]) -> None:
    await driver.executemany(_INSERT_TASK.sql, [_INSERT_TASK.params(task_values(op)) for op in ops])
    count = _SHARED.count_task
    await driver.executemany(count.sql, [count.params({"agent_id": op.agent_id}) for op in ops])


async def _started(driver: Any, ops: list[TaskStarted]) -> None:
    await driver.executemany(
        _START_TASK.sql,
        [_START_TASK.params({"task_id": o.task_id, "started_at": o.started_at}) for o in ops],
    )


async def _finished(driver: Any, ops: list[TaskFinished]) -> None:
    rows = [finished_values(op) for op in ops]
    finish, totals = _SHARED.finish_task, _SHARED.agent_totals
    await driver.executemany(finish.sql, [finish.params(r) for r in rows])
    # what was spent was spent, whatever the task's state says (a survivor may have marked
    # it interrupted meanwhile)
    spent = [totals.params(r) for r in rows if r["agent_id"] is not None]
    if spent:
        await driver.executemany(totals.sql, spent)


async def _usage(driver: Any, ops: list[UsageAdded]) -> None:
    add = _SHARED.add_usage
    await driver.executemany(add.sql, [add.params(usage_values(op)) for op in ops])


async def _pruned(driver: Any, ops: list[EventsPruned]) -> None:
    newest = int(await driver.fetchval("SELECT COALESCE(max(seq), 0) FROM events"))
    keep = min(op.keep_last for op in ops)
    await driver.execute(_SHARED.prune.sql, newest - keep)


async def _new_artifacts(driver: Any, ops: list[NewArtifact]) -> None:
    insert = _SHARED.insert_artifact
    await driver.executemany(insert.sql, [insert.params(op.as_stored()) for op in ops])


async def _evicted(driver: Any, ops: list[ArtifactsEvicted]) -> None:
    evict = _SHARED.evict_artifact
    await driver.executemany(evict.sql, [evict.params(v) for op in ops for v in evicted_values(op)])


_RUNS: dict[type, Run] = {
    NewAgent: _new_agents,
    AgentSessionSaved: _sessions,
    AgentDeleted: _deleted,
    NewTask: _new_tasks,
    TaskStarted: _started,
    TaskFinished: _finished,
    UsageAdded: _usage,
    EventsPruned: _pruned,
    NewArtifact: _new_artifacts,
    ArtifactsEvicted: _evicted,
}


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
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    rows = [event_row(seq, op) for seq, op in zip(seqs, new, strict=True)]
    await driver.executemany(_SHARED.insert_event.sql, rows)
    return seqs


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
