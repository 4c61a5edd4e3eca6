"""Index tasks in their order: an agent's tasks newest first (its listing, a chat agent's
history) by `(agent_id, order_key)`, which replaces the index on `agent_id` alone, and all
tasks newest first (`GET /v1/tasks`) by `order_key`. Without them SQLite sorted every task
of the agent, or of the store, for each page, and could pick the state index for an agent's
succeeded tasks (a scan of all of them). With 200,000 tasks: an agent's history 0.3 ms (21 ms
through the state index) and the newest 50 tasks 92 ms before, 0.03 and 0.1 ms after.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tasks_agent_order", "tasks", ["agent_id", "order_key"], if_not_exists=True)
    op.create_index("ix_tasks_order", "tasks", ["order_key"], if_not_exists=True)
    op.drop_index("ix_tasks_agent_id", table_name="tasks", if_exists=True)


def downgrade() -> None:
    op.create_index("ix_tasks_agent_id", "tasks", ["agent_id"], if_not_exists=True)
    op.drop_index("ix_tasks_order", table_name="tasks")
    op.drop_index("ix_tasks_agent_order", table_name="tasks")
