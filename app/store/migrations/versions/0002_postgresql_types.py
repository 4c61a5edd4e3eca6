"""PostgreSQL types: BIGINT counters and seq, JSONB documents, a real boolean default.

The baseline's INTEGER (32-bit on PostgreSQL) would overflow on a busy installation's token
totals and event seq; JSON becomes JSONB (binary, indexable). SQLite's integers are 64-bit
and its JSON is text either way, so there this revision changes nothing.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BIGINT_COLUMNS = {
    "agents": ("input_tokens", "output_tokens", "tasks_total"),
    "tasks": ("input_tokens", "output_tokens", "cached_input_tokens", "order_key"),
    "events": ("seq",),
    "usage_totals": ("calls", "input_tokens", "output_tokens", "cached_input_tokens"),
}
JSON_COLUMNS = {
    "agents": ("fallbacks",),
    "tasks": ("error", "files_changed"),
    "events": ("payload",),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in BIGINT_COLUMNS.items():
        for column in columns:
            op.alter_column(table, column, type_=sa.BigInteger(), existing_type=sa.Integer())
    for table, columns in JSON_COLUMNS.items():
        for column in columns:
            op.alter_column(
                table,
                column,
                type_=JSONB(),
                existing_type=sa.JSON(),
                postgresql_using=f"{column}::jsonb",
            )
    op.alter_column("agents", "stream", server_default=sa.false(), existing_type=sa.Boolean())


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in JSON_COLUMNS.items():
        for column in columns:
            op.alter_column(
                table,
                column,
                type_=sa.JSON(),
                existing_type=JSONB(),
                postgresql_using=f"{column}::json",
            )
    for table, columns in BIGINT_COLUMNS.items():
        for column in columns:
            op.alter_column(table, column, type_=sa.Integer(), existing_type=sa.BigInteger())
