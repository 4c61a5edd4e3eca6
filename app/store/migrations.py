"""Schema creation and forward-only migrations, applied at start-up.

Version 1 is the initial schema (`metadata.create_all`). A later change appends a function
to `MIGRATIONS`; each runs once, in order, inside a transaction, and is recorded in
`schema_version`. (Alembic would be the tool once there are branches or PostgreSQL in
production; for one embedded database a list of functions is enough and has no CLI to learn.)
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Connection, func, insert, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.store.schema import artifacts, metadata, schema_version, usage_totals

Migration = Callable[[Connection], None]


def _initial(conn: Connection) -> None:
    metadata.create_all(conn)


def add_column_if_missing(conn: Connection, table: str, column: str, ddl: str) -> None:
    """`ALTER TABLE ... ADD COLUMN` unless a fresh database already has it from `_initial`."""
    if column not in {c["name"] for c in inspect(conn).get_columns(table)}:
        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}"))


def _usage_totals(conn: Connection) -> None:
    usage_totals.create(conn, checkfirst=True)
    add_column_if_missing(conn, "agents", "stream", "BOOLEAN NOT NULL DEFAULT 0")


def _workspaces(conn: Connection) -> None:
    add_column_if_missing(conn, "agents", "workspace", "TEXT")
    add_column_if_missing(conn, "tasks", "files_changed", "JSON")


def _events_by_task(conn: Connection) -> None:
    """A task's events are read on their own (its event stream, `task_id` filters)."""
    conn.execute(text("CREATE INDEX IF NOT EXISTS ix_events_task_id ON events (task_id)"))


def _claude_code(conn: Connection) -> None:
    # `options` is shared by every kind with settings of its own (same DDL wherever added)
    add_column_if_missing(conn, "agents", "options", "JSON")
    add_column_if_missing(conn, "agents", "session_id", "VARCHAR(128)")
    add_column_if_missing(conn, "tasks", "new_session", "BOOLEAN NOT NULL DEFAULT FALSE")


def _browser(conn: Connection) -> None:
    artifacts.create(conn, checkfirst=True)
    add_column_if_missing(conn, "agents", "options", "JSON")


MIGRATIONS: list[Migration] = [
    _initial,
    _usage_totals,
    _workspaces,
    _events_by_task,
    _claude_code,
    _browser,
]


async def migrate(engine: AsyncEngine) -> int:
    """Bring the schema to the newest version; return that version."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: schema_version.create(c, checkfirst=True))
        current = (await conn.execute(select(func.max(schema_version.c.version)))).scalar() or 0
        for version, step in enumerate(MIGRATIONS, start=1):
            if version <= current:
                continue
            await conn.run_sync(step)
            await conn.execute(
                insert(schema_version).values(version=version, applied_at=time.time())
            )
    return len(MIGRATIONS)
