"""Agent options and sessions (the claude_code kind): `agents.options` (kind-specific
settings), `agents.session_id` (the Claude Code session it resumes), `tasks.new_session`.
A database made by the last pre-Alembic release (its `schema_version` 5) has them already.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    agents, tasks = _columns("agents"), _columns("tasks")
    if "options" not in agents:
        op.add_column("agents", sa.Column("options", sa.JSON().with_variant(JSONB(), "postgresql")))
    if "session_id" not in agents:
        op.add_column("agents", sa.Column("session_id", sa.String(128)))
    if "new_session" not in tasks:
        op.add_column(
            "tasks",
            sa.Column("new_session", sa.Boolean, nullable=False, server_default=sa.false()),
        )
    elif op.get_bind().dialect.name == "postgresql":  # pre-Alembic: JSON, not JSONB
        op.alter_column(
            "agents",
            "options",
            type_=JSONB(),
            existing_type=sa.JSON(),
            postgresql_using="options::jsonb",
        )


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("new_session")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("session_id")
        batch.drop_column("options")
