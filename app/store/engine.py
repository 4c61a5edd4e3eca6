"""The async SQLAlchemy engine, SQLite tuned for a single-process server (WAL mode).

Why SQLAlchemy Core over raw aiosqlite: the same repositories run on PostgreSQL by changing
`BIGTHREE_DATABASE_URL`, and Core gives typed, injection-safe SQL without an ORM's session
state to keep coherent across tasks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

BUSY_TIMEOUT_MS = 5000


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (None for other databases and `:memory:`)."""
    return _sqlite_path(url)


def _sqlite_path(url: str) -> Path | None:
    prefix = "sqlite+aiosqlite:///"
    if url.startswith(prefix) and ":memory:" not in url:
        return Path(url[len(prefix) :])
    return None


def create_engine(url: str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> AsyncEngine:
    path = _sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, pool_pre_ping=path is None)
    if url.startswith("sqlite"):

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return engine


_write_locks: WeakKeyDictionary[AsyncEngine, asyncio.Lock] = WeakKeyDictionary()


@asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """`engine.begin()`, with SQLite writers of this process queued one at a time.

    SQLite admits one writer anyway. Left to SQLite, waiting writers poll its lock from their
    driver threads (busy_timeout back-off sleeps of up to 100 ms, in no order), while the
    writer holding it needs an event-loop turn per statement to finish: on a busy loop a
    writer could wait past busy_timeout and fail with "database is locked" (seen at ~100
    tasks/s with clients on the same loop). Queued here, writers go first come first served
    and the next one starts as soon as the lock is free. busy_timeout still covers other
    processes. Other databases handle concurrent writers themselves and are not queued.
    """
    if engine.dialect.name != "sqlite":
        async with engine.begin() as conn:
            yield conn
        return
    lock = _write_locks.setdefault(engine, asyncio.Lock())
    async with lock, engine.begin() as conn:
        yield conn


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
