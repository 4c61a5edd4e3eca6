"""Databases as releases before Alembic left them (`schema_version` 1), for upgrade tests.

The DDL is what `metadata.create_all` emitted for the first schema, in SQL that SQLite and
PostgreSQL both accept. (A data directory made by the last pre-Alembic release, version 3,
is checked in: tests/fixtures/data-d7ea70e.)
"""

from __future__ import annotations

import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

V1_DDL = [
    """CREATE TABLE agents (
        id VARCHAR(32) NOT NULL, name VARCHAR(64) NOT NULL, kind VARCHAR(16) NOT NULL,
        provider VARCHAR(32) NOT NULL, model VARCHAR(128) NOT NULL, instructions TEXT NOT NULL,
        fallbacks JSON NOT NULL, state VARCHAR(16) NOT NULL, created_at FLOAT NOT NULL,
        updated_at FLOAT NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
        cost_usd FLOAT NOT NULL, tasks_total INTEGER NOT NULL, PRIMARY KEY (id))""",
    "CREATE UNIQUE INDEX uq_agents_live_name ON agents (name) WHERE state != 'deleted'",
    """CREATE TABLE tasks (
        id VARCHAR(32) NOT NULL, agent_id VARCHAR(32) NOT NULL, agent_name VARCHAR(64) NOT NULL,
        state VARCHAR(16) NOT NULL, prompt TEXT NOT NULL, result TEXT, error JSON,
        input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
        cached_input_tokens INTEGER NOT NULL, cost_usd FLOAT NOT NULL, attempts INTEGER NOT NULL,
        timeout_s FLOAT NOT NULL, created_at FLOAT NOT NULL, started_at FLOAT,
        finished_at FLOAT, order_key INTEGER NOT NULL, PRIMARY KEY (id))""",
    "CREATE INDEX ix_tasks_state ON tasks (state)",
    "CREATE INDEX ix_tasks_agent_id ON tasks (agent_id)",
    """CREATE TABLE events (
        seq INTEGER NOT NULL, ts FLOAT NOT NULL, source VARCHAR(64) NOT NULL,
        type VARCHAR(64) NOT NULL, agent VARCHAR(64), task_id VARCHAR(32),
        session_id VARCHAR(128), payload JSON NOT NULL, PRIMARY KEY (seq))""",
    "CREATE INDEX ix_events_type ON events (type)",
    "CREATE INDEX ix_events_agent ON events (agent)",
    """CREATE TABLE schema_version (
        version INTEGER NOT NULL, applied_at FLOAT NOT NULL, PRIMARY KEY (version))""",
]

# what versions 2-6 of the old migration list added
V6_DDL = [
    """CREATE TABLE usage_totals (
        provider VARCHAR(32) NOT NULL, model VARCHAR(128) NOT NULL, calls INTEGER NOT NULL,
        input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
        cached_input_tokens INTEGER NOT NULL, cost_usd FLOAT NOT NULL,
        PRIMARY KEY (provider, model))""",
    "ALTER TABLE agents ADD COLUMN stream BOOLEAN NOT NULL DEFAULT false",
    "ALTER TABLE agents ADD COLUMN workspace TEXT",
    "ALTER TABLE tasks ADD COLUMN files_changed JSON",
    "CREATE INDEX IF NOT EXISTS ix_events_task_id ON events (task_id)",
    "ALTER TABLE agents ADD COLUMN options JSON",
    "ALTER TABLE agents ADD COLUMN session_id VARCHAR(128)",
    "ALTER TABLE tasks ADD COLUMN new_session BOOLEAN NOT NULL DEFAULT FALSE",
    """CREATE TABLE artifacts (
        id VARCHAR(32) NOT NULL, task_id VARCHAR(32) NOT NULL, agent_name VARCHAR(64) NOT NULL,
        kind VARCHAR(16) NOT NULL, step INTEGER NOT NULL, action VARCHAR(32), url TEXT NOT NULL,
        title TEXT, page_text TEXT, mime_type VARCHAR(64) NOT NULL, bytes INTEGER NOT NULL,
        width INTEGER NOT NULL, height INTEGER NOT NULL, sha256 VARCHAR(64) NOT NULL,
        created_at FLOAT NOT NULL, evicted_at FLOAT, PRIMARY KEY (id))""",
    "CREATE INDEX ix_artifacts_task_id ON artifacts (task_id)",
    "CREATE INDEX ix_artifacts_created_at ON artifacts (created_at)",
    "INSERT INTO schema_version VALUES (2, 0), (3, 0), (4, 0), (5, 0), (6, 0)",
]

V1_ROWS = [
    """INSERT INTO agents VALUES ('a1', 'old-helper', 'chat', 'openai', 'gpt-4o-mini', '',
        '[]', 'idle', 1.0, 2.0, 10, 5, 0.5, 1)""",
    """INSERT INTO tasks VALUES ('t1', 'a1', 'old-helper', 'succeeded', 'hi', 'echo: hi', NULL,
        10, 5, 0, 0.5, 1, 60.0, 1.0, 1.5, 2.0, 1)""",
    """INSERT INTO events VALUES (1, 1.0, 'service', 'task.succeeded', 'old-helper', 't1', NULL,
        '{"result": "echo: hi"}')""",
]


async def make_v1_database(url: str, *, version_6: bool = False) -> None:
    """Create the version-1 schema with one agent, task and event at `url`; with
    `version_6`, what the last pre-Alembic release left (every column, the task index)."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            for statement in [*V1_DDL, *V1_ROWS]:
                await conn.execute(text(statement))
            await conn.execute(
                text("INSERT INTO schema_version VALUES (1, :now)"), {"now": time.time()}
            )
            if version_6:
                for statement in V6_DDL:
                    await conn.execute(text(statement))
    finally:
        await engine.dispose()
