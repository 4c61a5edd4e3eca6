"""Baseline: the schema of the pre-Alembic releases' `schema_version` 3.

A new database gets these tables. A database made by an earlier release (it has the old
`schema_version` table) is adopted instead: the columns its version lacks are added, as
that release's own migrations would have added them, and `schema_version` is dropped —
from here on `alembic_version` records the revision.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "schema_version" in existing:
        _adopt_legacy(existing)
    else:
        _create()


def downgrade() -> None:
    for table in ("usage_totals", "events", "tasks", "agents"):
        op.drop_table(table)


def _create() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("instructions", sa.Text, nullable=False),
        sa.Column("fallbacks", sa.JSON, nullable=False),
        sa.Column("stream", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("workspace", sa.Text, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("tasks_total", sa.Integer, nullable=False),
    )
    op.create_index(
        "uq_agents_live_name",
        "agents",
        ["name"],
        unique=True,
        sqlite_where=sa.text("state != 'deleted'"),
        postgresql_where=sa.text("state != 'deleted'"),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("agent_id", sa.String(32), nullable=False),
        sa.Column("agent_name", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("result", sa.Text, nullable=True),
        sa.Column("error", sa.JSON, nullable=True),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("cached_input_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("timeout_s", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("order_key", sa.Integer, nullable=False),
        sa.Column("files_changed", sa.JSON, nullable=True),
    )
    op.create_index("ix_tasks_agent_id", "tasks", ["agent_id"])
    op.create_index("ix_tasks_state", "tasks", ["state"])
    op.create_table(
        "events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(64), nullable=True),
        sa.Column("task_id", sa.String(32), nullable=True),
        sa.Column("session_id", sa.String(128), nullable=True),
        sa.Column("payload", sa.JSON, nullable=False),
    )
    op.create_index("ix_events_type", "events", ["type"])
    op.create_index("ix_events_agent", "events", ["agent"])
    _create_usage_totals()


def _create_usage_totals() -> None:
    op.create_table(
        "usage_totals",
        sa.Column("provider", sa.String(32), primary_key=True),
        sa.Column("model", sa.String(128), primary_key=True),
        sa.Column("calls", sa.Integer, nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("cached_input_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
    )


def _adopt_legacy(existing: set[str]) -> None:
    """Finish what the old migration list (versions 1-3) would have done, then retire it
    (version 4's index is revision 0004's, which tolerates finding it there)."""
    if "usage_totals" not in existing:  # version 2
        _create_usage_totals()
    inspector = sa.inspect(op.get_bind())
    have = {
        table: {c["name"] for c in inspector.get_columns(table)} for table in ("agents", "tasks")
    }
    wanted: list[tuple[str, sa.Column[Any]]] = [
        # `false`, not the old `0`: PostgreSQL refuses an integer default on a boolean
        ("agents", sa.Column("stream", sa.Boolean, nullable=False, server_default=sa.false())),
        ("agents", sa.Column("workspace", sa.Text, nullable=True)),  # version 3
        ("tasks", sa.Column("files_changed", sa.JSON, nullable=True)),  # version 3
    ]
    for table, column in wanted:
        if column.name not in have[table]:
            op.add_column(table, column)
    op.drop_table("schema_version")
