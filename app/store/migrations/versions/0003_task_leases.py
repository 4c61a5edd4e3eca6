"""Task claims with leases, and task order from a PostgreSQL sequence.

Replicas sharing one PostgreSQL database claim queued tasks with a row lock and hold each
running task under a lease their heartbeat renews (`claimed_by`, `lease_expires_at`, in
the database's clock); a task whose lease ran out belonged to a replica that died.
`cancel_requested` carries a cancel to the replica running the task. The partial index
serves the claim query (the unfinished tasks of each agent, in order).

On PostgreSQL a task's `order_key` comes from the `tasks_order_seq` sequence, so replicas
agree on every agent's FIFO (SQLite: its single process numbers them). Event seqs need no
schema change: the PostgreSQL writer numbers them under a transaction lock
(app/store/pg_backend.py).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UNFINISHED = "state IN ('queued', 'running')"


def upgrade() -> None:
    op.add_column("tasks", sa.Column("claimed_by", sa.String(128), nullable=True))
    op.add_column("tasks", sa.Column("lease_expires_at", sa.Float, nullable=True))
    op.add_column(
        "tasks",
        sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index(
        "ix_tasks_unfinished",
        "tasks",
        ["agent_id", "order_key"],
        sqlite_where=sa.text(UNFINISHED),
        postgresql_where=sa.text(UNFINISHED),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE tasks_order_seq AS BIGINT OWNED BY tasks.order_key")
        op.execute(
            "SELECT setval('tasks_order_seq', "
            "COALESCE((SELECT max(order_key) FROM tasks), 0) + 1, false)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE tasks_order_seq")
    op.drop_index("ix_tasks_unfinished", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("cancel_requested")
        batch.drop_column("lease_expires_at")
        batch.drop_column("claimed_by")
