"""Alembic's environment: run the revisions on the connection the runner hands over.

The runner (`runner.py`) opens the connection, takes the migration lock and begins the
transaction; here Alembic only runs inside it (an external transaction: Alembic neither
begins nor commits). `alembic` used from the command line is not supported: use
`bigthree db upgrade`, which takes the lock.
"""

from __future__ import annotations

from alembic import context

from app.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `bigthree db upgrade`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite's ALTER TABLE is limited: batch operations rebuild the table instead
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
