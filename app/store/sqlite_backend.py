"""The SQLite write backend: one connection on one thread, statements compiled once.

Every transaction is a single hand-off to the writer thread (`commit` runs the whole batch
there: BEGIN IMMEDIATE, the statements, COMMIT), instead of a thread hop per statement
through SQLAlchemy's async bridge. The statements are written once with SQLAlchemy Core over
the tables in app/store/schema.py, compiled to SQLite's SQL at import, and run through the
stdlib driver, whose statement cache keeps them prepared. Reads use their own connections
(WAL: readers never wait for this writer).

The event `seq` is assigned here, inside the transaction: the next number above the newest
stored one. Only one writer exists per database file in single-process mode, and a seq taken
by a transaction that rolls back is given again, because nobody has seen it (events are
published only after their commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, literal_column, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
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
from app.store.schema import agents, alembic_version, events, tasks, usage_totals


@dataclass(frozen=True, slots=True)
class _Statement:
    sql: str
    names: tuple[str, ...]

    def params(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(values[name] for name in self.names)


def _compile(statement: ClauseElement) -> _Statement:
    compiled = statement.compile(dialect=sqlite.dialect())
    names = getattr(compiled, "positiontup", None) or ()  # qmark: the binds, in order
    return _Statement(compiled.string, tuple(names))


def _b(name: str) -> Any:
    return bindparam(name)


_INSERT_EVENT = _compile(insert(events).values({c.name: _b(c.name) for c in events.columns}))
_INSERT_AGENT = _compile(insert(agents).values({c.name: _b(c.name) for c in agents.columns}))
_SAVE_SESSION = _compile(
    update(agents).where(agents.c.id == _b("agent_id")).values(session_id=_b("session_id"))
)
_DELETE_AGENT = _compile(
    update(agents)
    .where(agents.c.id == _b("agent_id"))
    .values(state=_b("state"), updated_at=_b("at"))
)
_INSERT_TASK = _compile(insert(tasks).values({c.name: _b(c.name) for c in tasks.columns}))
_COUNT_TASK = _compile(
    update(agents)
    .where(agents.c.id == _b("agent_id"))
    .values(tasks_total=agents.c.tasks_total + literal_column("1"))
)
_START_TASK = _compile(
    update(tasks)
    .where(tasks.c.id == _b("task_id"))
    .values(state=_b("state"), started_at=_b("started_at"))
)
_FINISH_TASK = _compile(
    update(tasks)
    .where(tasks.c.id == _b("task_id"))
    .values(
        state=_b("state"),
        result=_b("result"),
        error=_b("error"),
        input_tokens=_b("input_tokens"),
        output_tokens=_b("output_tokens"),
        cached_input_tokens=_b("cached_input_tokens"),
        cost_usd=_b("cost_usd"),
        attempts=_b("attempts"),
        finished_at=_b("finished_at"),
        files_changed=_b("files_changed"),
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
_upsert = sqlite_insert(usage_totals).values({c.name: _b(c.name) for c in usage_totals.columns})
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
_MAX_SEQ = _compile(select(func.max(events.c.seq)))
_PROBE = _compile(
    update(alembic_version)
    .where(alembic_version.c.version_num == _b("never"))
    .values(version_num=alembic_version.c.version_num)
)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _classify(exc: sqlite3.Error) -> StoreFailure:
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if name == "SQLITE_FULL" or "disk is full" in text:
        reason = "disk_full"
    elif name.startswith("SQLITE_READONLY") or "readonly" in text:
        reason = "read_only"
    elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        reason = "locked"
    elif name.startswith("SQLITE_IOERR") or "I/O error" in text:
        reason = "io_error"
    else:
        reason = "unavailable"
    return StoreFailure(reason, text)


class SQLiteWriteBackend:
    def __init__(self, path: Path, *, busy_timeout_ms: int = 5000, synchronous: str = "NORMAL"):
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._synchronous = synchronous
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._conn: sqlite3.Connection | None = None
        self._last_seq = 0

    # --- the writer thread ----------------------------------------------------------------

    def _connect(self) -> int:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self._path, isolation_level=None, check_same_thread=False, cached_statements=64
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys=ON")
        self._conn = conn
        self._last_seq = int(conn.execute(_MAX_SEQ.sql).fetchone()[0] or 0)
        return self._last_seq

    def _transaction(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        conn = self._conn
        assert conn is not None, "open() first"
        try:
            conn.execute("BEGIN IMMEDIATE")
            result = work(conn)
            conn.execute("COMMIT")
            return result
        except (sqlite3.OperationalError, sqlite3.InternalError) as exc:
            self._rollback(conn)  # the store cannot write now: the same batch may later
            raise _classify(exc) from exc
        except (sqlite3.Error, TypeError, ValueError, OverflowError) as exc:
            self._rollback(conn)  # a row the store refuses (constraint, value it cannot bind)
            raise RowConflict(f"{type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            # SQLite may have rolled back already (e.g. after SQLITE_FULL)
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")

    def _apply(self, units: Sequence[Sequence[WriteOp]]) -> list[list[int]]:
        seq = self._last_seq

        def work(conn: sqlite3.Connection) -> list[list[int]]:
            nonlocal seq
            assigned: list[list[int]] = []
            event_rows: list[tuple[Any, ...]] = []
            for unit in units:
                mine: list[int] = []
                for op in unit:
                    if isinstance(op, NewEvent):
                        seq += 1
                        mine.append(seq)
                        event_rows.append(
                            (
                                seq,
                                op.ts,
                                op.source,
                                op.type,
                                op.agent,
                                op.task_id,
                                op.session_id,
                                op.payload_json,
                            )
                        )
                    else:
                        if event_rows:  # keep statement order: events first, as queued
                            conn.executemany(_INSERT_EVENT.sql, event_rows)
                            event_rows.clear()
                        self._execute(conn, op)
                assigned.append(mine)
            if event_rows:
                conn.executemany(_INSERT_EVENT.sql, event_rows)
            return assigned

        result: list[list[int]] = self._transaction(work)
        self._last_seq = seq
        return result

    def _execute(self, conn: sqlite3.Connection, op: WriteOp) -> None:
        if isinstance(op, TaskStarted):
            conn.execute(
                _START_TASK.sql,
                _START_TASK.params(
                    {"state": "running", "started_at": op.started_at, "task_id": op.task_id}
                ),
            )
        elif isinstance(op, TaskFinished):
            values = {
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
            conn.execute(_FINISH_TASK.sql, _FINISH_TASK.params(values))
            if op.agent_id is not None:
                conn.execute(_AGENT_TOTALS.sql, _AGENT_TOTALS.params(values))
        elif isinstance(op, NewTask):
            conn.execute(
                _INSERT_TASK.sql,
                _INSERT_TASK.params(
                    {
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
                        "order_key": op.order_key,
                        "files_changed": None,
                        "new_session": op.new_session,
                        "claimed_by": None,
                        "lease_expires_at": None,
                        "cancel_requested": False,
                    }
                ),
            )
            conn.execute(_COUNT_TASK.sql, _COUNT_TASK.params({"agent_id": op.agent_id}))
        elif isinstance(op, UsageAdded):
            conn.execute(
                _ADD_USAGE.sql,
                _ADD_USAGE.params(
                    {
                        "provider": op.provider,
                        "model": op.model,
                        "calls": op.calls,
                        "input_tokens": op.input_tokens,
                        "output_tokens": op.output_tokens,
                        "cached_input_tokens": op.cached_input_tokens,
                        "cost_usd": op.cost_usd,
                    }
                ),
            )
        elif isinstance(op, NewAgent):
            row = op.as_stored()
            row["fallbacks"] = _json(row["fallbacks"])
            row["options"] = _json(row["options"])
            conn.execute(_INSERT_AGENT.sql, _INSERT_AGENT.params(row))
        elif isinstance(op, AgentSessionSaved):
            conn.execute(
                _SAVE_SESSION.sql,
                _SAVE_SESSION.params({"agent_id": op.agent_id, "session_id": op.session_id}),
            )
        elif isinstance(op, AgentDeleted):
            conn.execute(
                _DELETE_AGENT.sql,
                _DELETE_AGENT.params({"agent_id": op.agent_id, "state": "deleted", "at": op.at}),
            )
        elif isinstance(op, EventsPruned):
            newest = int(conn.execute(_MAX_SEQ.sql).fetchone()[0] or 0)
            conn.execute(_PRUNE.sql, _PRUNE.params({"upto": newest - op.keep_last}))
        else:  # pragma: no cover - NewEvent is batched by _apply
            raise TypeError(f"unknown write {op!r}")

    def _probe(self) -> None:
        self._transaction(lambda conn: conn.execute(_PROBE.sql, (-1,)))

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # --- the event loop side ----------------------------------------------------------------

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def open(self) -> int:
        try:
            seq: int = await self._run(self._connect)
        except sqlite3.Error as exc:
            raise _classify(exc) from exc
        return seq

    async def commit(self, units: Sequence[Sequence[WriteOp]]) -> list[list[int]]:
        result: list[list[int]] = await self._run(self._apply, units)
        return result

    async def probe(self) -> None:
        await self._run(self._probe)

    async def close(self) -> None:
        if self._conn is None:
            return
        await self._run(self._close)
        self._thread.shutdown(wait=True)
