"""The SQLite write backend: one connection, statements compiled once.

A transaction runs whole in one call (`commit`: BEGIN IMMEDIATE, the statements, COMMIT),
never a thread hop per statement through SQLAlchemy's async bridge. With
`synchronous=NORMAL` (the default) a commit appends to the WAL without an fsync, tens of µs
for a task's rows, so it runs right on the event loop's thread: handed to a thread, its
result waited behind everything queued on the loop (in a burst of 50 submits, ~2 ms for
each batch; bench/README.md, run 11). It never waits there: the connection's busy timeout
is 0, and a batch that finds another connection holding the write lock, a batch of bulk
deletes (pruning, eviction) and every commit with `synchronous=FULL` (an fsync each) run on
the writer thread instead, with SQLite's busy wait.

The statements are written once with SQLAlchemy Core over the tables in app/store/schema.py
(most shared with PostgreSQL: app/store/statements.py), compiled to SQLite's SQL at import,
and run through the stdlib driver, whose statement cache keeps them prepared. Task writes
are unconditional here: this is the only writer (PostgreSQL's are guarded against other
replicas). Reads use their own connections (WAL: readers never wait for this writer), and so
do WAL checkpoints (app/store/sqlite_checkpoint.py: never inside a commit).

The event `seq` is assigned here, inside the transaction: the next number above the newest
stored one. Only one writer exists per database file in single-process mode, and a seq taken
by a transaction that rolls back is given again, because nobody has seen it (events are
published only after their commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

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
from app.store.schema import agents, alembic_version, events, tasks
from app.store.sqlite_checkpoint import Checkpointer
from app.store.statements import insert_row, prepare, prepare_shared_writes

_DIALECT = sqlite.dialect()
_BULK = (EventsPruned, ArtifactsEvicted)  # may touch many rows: committed on the thread
_SHARED = prepare_shared_writes(_DIALECT, sqlite_insert)
_INSERT_TASK = prepare(insert_row(tasks), _DIALECT)
_DELETE_AGENT = prepare(
    update(agents)
    .where(agents.c.id == bindparam("agent_id"))
    .values(state=bindparam("state"), updated_at=bindparam("at")),
    _DIALECT,
)
_START_TASK = prepare(
    update(tasks)
    .where(tasks.c.id == bindparam("task_id"))
    .values(state=bindparam("state"), started_at=bindparam("started_at")),
    _DIALECT,
)
_MAX_SEQ = prepare(select(func.max(events.c.seq)), _DIALECT)
_PROBE = prepare(
    update(alembic_version)
    .where(alembic_version.c.version_num == bindparam("never"))
    .values(version_num=alembic_version.c.version_num),
    _DIALECT,
)


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
        self._inline = synchronous.upper() != "FULL"  # commit on the loop's thread
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._checkpointer = Checkpointer(path, busy_timeout_ms=busy_timeout_ms)
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
        conn.execute(f"PRAGMA busy_timeout={0 if self._inline else int(self._busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA wal_autocheckpoint=0")  # the Checkpointer's job, off this thread
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
            self._checkpointer.committed()
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
            event_rows: list[tuple[object, ...]] = []
            for unit in units:
                mine: list[int] = []
                for op in unit:
                    if isinstance(op, NewEvent):
                        seq += 1
                        mine.append(seq)
                        event_rows.append(event_row(seq, op))
                    else:
                        if event_rows:  # keep statement order: events first, as queued
                            conn.executemany(_SHARED.insert_event.sql, event_rows)
                            event_rows.clear()
                        self._execute(conn, op)
                assigned.append(mine)
            if event_rows:
                conn.executemany(_SHARED.insert_event.sql, event_rows)
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
            values = finished_values(op)
            conn.execute(_SHARED.finish_task.sql, _SHARED.finish_task.params(values))
            if op.agent_id is not None:
                conn.execute(_SHARED.agent_totals.sql, _SHARED.agent_totals.params(values))
        elif isinstance(op, NewTask):
            conn.execute(_INSERT_TASK.sql, _INSERT_TASK.params(task_values(op)))
            conn.execute(
                _SHARED.count_task.sql, _SHARED.count_task.params({"agent_id": op.agent_id})
            )
        elif isinstance(op, UsageAdded):
            conn.execute(_SHARED.add_usage.sql, _SHARED.add_usage.params(usage_values(op)))
        elif isinstance(op, NewAgent):
            conn.execute(_SHARED.insert_agent.sql, _SHARED.insert_agent.params(agent_values(op)))
        elif isinstance(op, AgentSessionSaved):
            conn.execute(
                _SHARED.save_session.sql,
                _SHARED.save_session.params({"agent_id": op.agent_id, "session_id": op.session_id}),
            )
        elif isinstance(op, AgentDeleted):
            conn.execute(
                _DELETE_AGENT.sql,
                _DELETE_AGENT.params({"agent_id": op.agent_id, "state": "deleted", "at": op.at}),
            )
        elif isinstance(op, EventsPruned):
            newest = int(conn.execute(_MAX_SEQ.sql).fetchone()[0] or 0)
            conn.execute(_SHARED.prune.sql, _SHARED.prune.params({"upto": newest - op.keep_last}))
        elif isinstance(op, NewArtifact):
            insert = _SHARED.insert_artifact
            conn.execute(insert.sql, insert.params(op.as_stored()))
        elif isinstance(op, ArtifactsEvicted):
            evict = _SHARED.evict_artifact
            conn.executemany(evict.sql, [evict.params(v) for v in evicted_values(op)])
        else:  # pragma: no cover - NewEvent is batched by _apply
            raise TypeError(f"unknown write {op!r}")

    def _waiting(self, work: Callable[..., Any], *args: Any) -> Any:
        """`work` on the writer thread, waiting out another connection's write lock as
        SQLite's busy timeout allows (commits on the loop's thread never wait)."""
        conn = self._conn
        if not self._inline or conn is None:
            return work(*args)
        conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
        try:
            return work(*args)
        finally:
            conn.execute("PRAGMA busy_timeout=0")

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

    def commit_now(self, units: Sequence[Sequence[WriteOp]]) -> list[list[int]] | None:
        """The loop-thread path alone: the writer's early commits take it (a burst of
        submits), and so does `commit` first."""
        if not self._inline or any(isinstance(op, _BULK) for unit in units for op in unit):
            return None
        return self._apply(units)

    async def commit(self, units: Sequence[Sequence[WriteOp]]) -> list[list[int]]:
        try:
            done = self.commit_now(units)
        except StoreFailure as exc:
            if exc.reason != "locked":
                raise
            done = None  # another connection holds the write lock: wait for it off the loop
        if done is not None:
            return done
        result: list[list[int]] = await self._run(self._waiting, self._apply, units)
        return result

    async def probe(self) -> None:
        await self._run(self._waiting, self._probe)

    async def close(self) -> None:
        if self._conn is None:
            return
        await self._run(self._close)
        self._thread.shutdown(wait=True)
        self._checkpointer.close()
