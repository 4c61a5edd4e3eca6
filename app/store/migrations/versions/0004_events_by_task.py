"""Index events by task: a task's events are read on their own (its SSE stream, `task_id`
filters). A database made by the last pre-Alembic release (its `schema_version` 4) has the
index already.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_task_id", "events", ["task_id"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_events_task_id", table_name="events")
