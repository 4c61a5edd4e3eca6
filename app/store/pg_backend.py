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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import bindparam, delete, func, insert, literal_column, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import ClauseElement

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
UNFINISHED = text("state IN ('queued', 'running')")

_NEWEST = select(func.coalesce(func.max(events.c.seq), 0))


@dataclass(frozen=True, slots=True)
class _Statement:
    """A statement compiled once to PostgreSQL's SQL, run with asyncpg's executemany (one
    round trip for all the rows of a batch, no per-statement compilation): the write path
    is the hot path."""

    sql: str
    names: tuple[str, ...]

    def args(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(values[name] for name in self.names)


_DIALECT = postgresql.dialect(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]


def _compile(statement: ClauseElement) -> _Statement:
    compiled = statement.compile(dialect=_DIALECT)
    names = getattr(compiled, "positiontup", None) or ()  # numeric: the binds, in order
    return _Statement(compiled.string, tuple(names))


def _b(name: str) -> Any:
    return bindparam(name)


def _all(table: Any, **computed: Any) -> dict[str, Any]:
    return {c.name: computed.get(c.name, _b(c.name)) for c in table.columns}


_INSERT_EVENT = _compile(insert(events).values(_all(events)))
_INSERT_AGENT = _compile(insert(agents).values(_all(agents)))
_SAVE_SESSION = _compile(
    update(agents).where(agents.c.id == _b("agent_id")).values(session_id=_b("session_id"))
)
_DELETE_AGENT = _compile(
    update(agents)
    .where(agents.c.id == _b("agent_id"))
    .values(state=literal_column("'deleted'"), updated_at=_b("at"))
)
_INSERT_TASK = _compile(
    insert(tasks).values(_all(tasks, order_key=literal_column("nextval('tasks_order_seq')")))
)
_COUNT_TASK = _compile(
    update(agents)
    .where(agents.c.id == _b("agent_id"))
    .values(tasks_total=agents.c.tasks_total + literal_column("1"))
)
_START_TASK = _compile(
    update(tasks)
    .where(tasks.c.id == _b("task_id"), UNFINISHED)
    .values(state=literal_column("'running'"), started_at=_b("started_at"))
)
_FINISH_TASK = _compile(
    update(tasks)
    .where(tasks.c.id == _b("task_id"), UNFINISHED)
    .values(
        {
            name: _b(name)
            for name in (
                "state",
                "result",
                "error",
                "input_tokens",
                "output_tokens",
                "cached_input_tokens",
                "cost_usd",
                "attempts",
                "finished_at",
                "files_changed",
            )
        }
    )
)
_AGENT_TOTALS = _compile(
    update(agents)
    .where(agents.c.id == _b("agent_id"))
    .values(
        state=_b("agent_state"),
        input_tokens=agents.c.input_tokens + _b("input_tokens"),
        output_tokens=agents.c.output_tokens + _b("output_tokens"),
        cost_usd=agents.c.cost_usd + _b("cost_usd"),
        updated_at=_b("finished_at"),
    )
)
_upsert = pg_insert(usage_totals).values(_all(usage_totals))
_ADD_USAGE = _compile(
    _upsert.on_conflict_do_update(
        index_elements=[usage_totals.c.provider, usage_totals.c.model],
        set_={
            name: usage_totals.c[name] + _upsert.excluded[name]
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
_PRUNE = _compile(delete(events).where(events.c.seq <= _b("upto")))


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


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
        event_rows: list[tuple[Any, ...]] = []
        others: list[WriteOp] = []
        for unit in units:
            mine: list[int] = []
            for op in unit:
                if isinstance(op, NewEvent):
                    seq += 1
                    mine.append(seq)
                    event_rows.append(_INSERT_EVENT.args(_event_values(seq, op)))
                else:
                    others.append(op)
            assigned.append(mine)
        # rows of other tables in the order they were queued, each run of one kind at once
        # (events touch no other table, so they can go last)
        for kind, run in groupby(others, key=type):
            await _RUNS[kind](driver, list(run))
        if event_rows:
            await driver.executemany(_INSERT_EVENT.sql, event_rows)
        return assigned


Run = Callable[[Any, list[Any]], Any]


async def _new_agents(driver: Any, ops: list[NewAgent]) -> None:
    rows = []
    for op in ops:
        values = op.as_stored()
        values["fallbacks"], values["options"] = (
            _json(values["fallbacks"]),
            _json(values["options"]),
        )
        rows.append(_INSERT_AGENT.args(values))
    await driver.executemany(_INSERT_AGENT.sql, rows)


async def _sessions(driver: Any, ops: list[AgentSessionSaved]) -> None:
    await driver.executemany(
        _SAVE_SESSION.sql,
        [_SAVE_SESSION.args({"agent_id": o.agent_id, "session_id": o.session_id}) for o in ops],
    )


async def _deleted(driver: Any, ops: list[AgentDeleted]) -> None:
    await driver.executemany(
        _DELETE_AGENT.sql, [_DELETE_AGENT.args({"agent_id": o.agent_id, "at": o.at}) for o in ops]
    )


async def _new_tasks(driver: Any, ops: list[NewTask]) -> None:
    rows = []
    for op in ops:
        values = {
            "id": op.id,
            "agent_id": op.agent_id,
            "agent_name": op.agent_name,
            "state": "queued",
            "prompt": op.prompt,
            "result": None,
            "error": None,
            "input_tokens": 0,
            "output_tokens": 0,
            "cached_input_tokens": 0,
            "cost_usd": 0.0,
            "attempts": 0,
            "timeout_s": op.timeout_s,
            "created_at": op.created_at,
            "started_at": None,
            "finished_at": None,
            "files_changed": None,
            "new_session": op.new_session,
            "claimed_by": None,
            "lease_expires_at": None,
            "cancel_requested": False,
        }
        rows.append(_INSERT_TASK.args(values))
    await driver.executemany(_INSERT_TASK.sql, rows)
    await driver.executemany(
        _COUNT_TASK.sql, [_COUNT_TASK.args({"agent_id": op.agent_id}) for op in ops]
    )


async def _started(driver: Any, ops: list[TaskStarted]) -> None:
    await driver.executemany(
        _START_TASK.sql,
        [_START_TASK.args({"task_id": o.task_id, "started_at": o.started_at}) for o in ops],
    )


async def _finished(driver: Any, ops: list[TaskFinished]) -> None:
    rows = [
        {
            "task_id": op.task_id,
            "state": op.state,
            "result": op.result,
            "error": _json(op.error),
            "input_tokens": op.input_tokens,
            "output_tokens": op.output_tokens,
            "cached_input_tokens": op.cached_input_tokens,
            "cost_usd": op.cost_usd,
            "attempts": op.attempts,
            "finished_at": op.finished_at,
            "files_changed": _json(op.files_changed),
            "agent_id": op.agent_id,
            "agent_state": op.agent_state,
        }
        for op in ops
    ]
    await driver.executemany(_FINISH_TASK.sql, [_FINISH_TASK.args(r) for r in rows])
    # what was spent was spent, whatever the task's state says (a survivor may have marked
    # it interrupted meanwhile)
    totals = [_AGENT_TOTALS.args(r) for r in rows if r["agent_id"] is not None]
    if totals:
        await driver.executemany(_AGENT_TOTALS.sql, totals)


async def _usage(driver: Any, ops: list[UsageAdded]) -> None:
    await driver.executemany(
        _ADD_USAGE.sql,
        [
            _ADD_USAGE.args(
                {
                    "provider": o.provider,
                    "model": o.model,
                    "calls": o.calls,
                    "input_tokens": o.input_tokens,
                    "output_tokens": o.output_tokens,
                    "cached_input_tokens": o.cached_input_tokens,
                    "cost_usd": o.cost_usd,
                }
            )
            for o in ops
        ],
    )


async def _pruned(driver: Any, ops: list[EventsPruned]) -> None:
    newest = int(await driver.fetchval("SELECT COALESCE(max(seq), 0) FROM events"))
    keep = min(op.keep_last for op in ops)
    await driver.execute(_PRUNE.sql, newest - keep)


_RUNS: dict[type, Run] = {
    NewAgent: _new_agents,
    AgentSessionSaved: _sessions,
    AgentDeleted: _deleted,
    NewTask: _new_tasks,
    TaskStarted: _started,
    TaskFinished: _finished,
    UsageAdded: _usage,
    EventsPruned: _pruned,
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
    rows = [_INSERT_EVENT.args(_event_values(seq, op)) for seq, op in zip(seqs, new, strict=True)]
    await driver.executemany(_INSERT_EVENT.sql, rows)
    return seqs


def _event_values(seq: int, op: NewEvent) -> dict[str, Any]:
    # the payload as the text it was encoded to once: stored as is
    return {
        "seq": seq,
        "ts": op.ts,
        "source": op.source,
        "type": op.type,
        "agent": op.agent,
        "task_id": op.task_id,
        "session_id": op.session_id,
        "payload": op.payload_json,
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
