"""Task claims with leases, and the event seq from a PostgreSQL sequence.

Replicas sharing one PostgreSQL database claim queued tasks with a row lock and hold each
running task under a lease their heartbeat renews (`claimed_by`, `lease_expires_at`, in
the database's clock); a task whose lease ran out belonged to a replica that died.
`cancel_requested` carries a cancel to the replica running the task. The partial index
serves the claim query (the unfinished tasks of each agent, in order).

On PostgreSQL the event `seq` becomes the `events_seq` sequence's, assigned at insert (the
writer takes a transaction lock first, so seqs are committed in order), and a task's
`order_key` the `tasks_order_seq` sequence's, so replicas agree on every agent's FIFO.
SQLite keeps assigning both in its single process.

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
        op.execute("CREATE SEQUENCE events_seq AS BIGINT OWNED BY events.seq")
        op.execute(
            "SELECT setval('events_seq', COALESCE((SELECT max(seq) FROM events), 0) + 1, false)"
        )
        op.execute("ALTER TABLE events ALTER COLUMN seq SET DEFAULT nextval('events_seq')")
        op.execute("CREATE SEQUENCE tasks_order_seq AS BIGINT OWNED BY tasks.order_key")
        op.execute(
            "SELECT setval('tasks_order_seq', "
            "COALESCE((SELECT max(order_key) FROM tasks), 0) + 1, false)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE events ALTER COLUMN seq DROP DEFAULT")
        op.execute("DROP SEQUENCE events_seq")
        op.execute("DROP SEQUENCE tasks_order_seq")
    op.drop_index("ix_tasks_unfinished", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("cancel_requested")
        batch.drop_column("lease_expires_at")
        batch.drop_column("claimed_by")
