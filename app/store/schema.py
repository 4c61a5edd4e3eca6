"""Tables, as SQLAlchemy Core. Times are UNIX epoch seconds (floats): sortable, zone-free.

This is the schema at the newest Alembic revision (`app/store/migrations/versions`); a test
compares the two on SQLite and PostgreSQL. Two portable types: `BigInt` (BIGINT on
PostgreSQL, INTEGER on SQLite, whose integers are 64-bit anyway and where only INTEGER makes
a primary key the rowid) and `Json` (JSONB on PostgreSQL, indexable and compact; JSON text
on SQLite).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    Sequence,
    String,
    Table,
    Text,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

BigInt = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")

metadata = MetaData()

agents = Table(
    "agents",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("model", String(128), nullable=False),
    Column("instructions", Text, nullable=False, default=""),
    Column("fallbacks", Json, nullable=False, default=list),
    Column("stream", Boolean, nullable=False, default=False, server_default=false()),
    Column("workspace", Text, nullable=True),
    Column("options", Json, nullable=True),  # kind-specific settings (claude_code: tools, ...)
    Column("session_id", String(128), nullable=True),  # claude_code: the Claude Code session
    Column("state", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("input_tokens", BigInt, nullable=False, default=0),
    Column("output_tokens", BigInt, nullable=False, default=0),
    Column("cost_usd", Float, nullable=False, default=0.0),
    Column("tasks_total", BigInt, nullable=False, default=0),
)
# a name is unique among live agents; a deleted agent's name may be reused
Index(
    "uq_agents_live_name",
    agents.c.name,
    unique=True,
    sqlite_where=text("state != 'deleted'"),
    postgresql_where=text("state != 'deleted'"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("agent_id", String(32), nullable=False),
    Column("agent_name", String(64), nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("prompt", Text, nullable=False),
    Column("result", Text, nullable=True),
    Column("error", Json, nullable=True),
    Column("input_tokens", BigInt, nullable=False, default=0),
    Column("output_tokens", BigInt, nullable=False, default=0),
    Column("cached_input_tokens", BigInt, nullable=False, default=0),
    Column("cost_usd", Float, nullable=False, default=0.0),
    Column("attempts", Integer, nullable=False, default=0),
    Column("timeout_s", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("order_key", BigInt, nullable=False),
    Column("files_changed", Json, nullable=True),
    Column("new_session", Boolean, nullable=False, default=False, server_default=false()),
    # scale-out: which replica runs the task, until when its lease holds (database clock)
    Column("claimed_by", String(128), nullable=True),
    Column("lease_expires_at", Float, nullable=True),
    Column("cancel_requested", Boolean, nullable=False, default=False, server_default=false()),
)
# PostgreSQL numbers tasks (their FIFO order) from this sequence (SQLite: its one process)
tasks_order_seq = Sequence("tasks_order_seq", metadata=metadata)
# an agent's tasks, newest first (its listing; a chat agent's history, read at its first
# task): found in order, with no sort, and never through the state index, which the planner
# could take without statistics, scanning every succeeded task (bench/README.md, run 15)
Index("ix_tasks_agent_order", tasks.c.agent_id, tasks.c.order_key)
# the newest tasks of all (`GET /v1/tasks`): read from the end, not sorted whole. (Not
# `(state, order_key)` for the state index: it would tie with the one above for an agent's
# succeeded tasks, and the planner took it.)
Index("ix_tasks_order", tasks.c.order_key)
# the claim query's: each agent's unfinished tasks in order
Index(
    "ix_tasks_unfinished",
    tasks.c.agent_id,
    tasks.c.order_key,
    sqlite_where=text("state IN ('queued', 'running')"),
    postgresql_where=text("state IN ('queued', 'running')"),
)

events = Table(
    "events",
    metadata,
    Column("seq", BigInt, primary_key=True, autoincrement=False),
    Column("ts", Float, nullable=False),
    Column("source", String(64), nullable=False),
    Column("type", String(64), nullable=False, index=True),
    Column("agent", String(64), nullable=True, index=True),
    Column("task_id", String(32), nullable=True, index=True),
    Column("session_id", String(128), nullable=True),
    Column("payload", Json, nullable=False),
)

# files a task produced (browser screenshots), stored under <artifacts dir>/<task id>/;
# an evicted artifact keeps its row (its events still name it) but not its file
artifacts = Table(
    "artifacts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("task_id", String(32), nullable=False, index=True),
    Column("agent_name", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("step", Integer, nullable=False),
    Column("action", String(32), nullable=True),
    Column("url", Text, nullable=False),
    Column("title", Text, nullable=True),
    Column("page_text", Text, nullable=True),
    Column("mime_type", String(64), nullable=False),
    Column("bytes", Integer, nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", Float, nullable=False, index=True),
    Column("evicted_at", Float, nullable=True),
)

usage_totals = Table(
    "usage_totals",
    metadata,
    Column("provider", String(32), primary_key=True),
    Column("model", String(128), primary_key=True),
    Column("calls", BigInt, nullable=False, default=0),
    Column("input_tokens", BigInt, nullable=False, default=0),
    Column("output_tokens", BigInt, nullable=False, default=0),
    Column("cached_input_tokens", BigInt, nullable=False, default=0),
    Column("cost_usd", Float, nullable=False, default=0.0),
)

# Alembic's own table (app/store/migrations), declared here only so the store's write probe
# can name it; Alembic creates it, and compare-to-schema checks leave it out
alembic_version = Table(
    "alembic_version", MetaData(), Column("version_num", String(32), primary_key=True)
)
