"""Run the Alembic revisions up to head, one migrator at a time.

Replicas that start together on one database must not run the same revisions twice. The
migration runs in one transaction on its own connection, and that transaction first takes
the engine's own lock: `pg_advisory_xact_lock` on PostgreSQL (released at commit; DDL is
transactional there, so a failed upgrade leaves nothing behind) and `BEGIN IMMEDIATE` on
SQLite (the database's write lock, which also makes SQLite's DDL transactional). The second
replica waits, then finds the database at head and does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.store.engine import sqlite_path

log = structlog.get_logger(__name__)

# pg_advisory_xact_lock key: any constant no other tool on the database uses ("big3")
MIGRATION_LOCK_KEY = 0x62696733
# how long a second migrator waits for SQLite's write lock before giving up
SQLITE_LOCK_WAIT_MS = 120_000


@dataclass(frozen=True, slots=True)
class UpgradeResult:
    before: str | None
    after: str | None

    @property
    def migrated(self) -> bool:
        return self.before != self.after


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def _migration_engine(url: str) -> AsyncEngine:
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, poolclass=NullPool)
    if engine.dialect.name == "sqlite":
        # pysqlite would begin transactions itself, lazily and never for DDL: take over
        # (SQLAlchemy's documented recipe) so the whole upgrade is one IMMEDIATE transaction

        @event.listens_for(engine.sync_engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_LOCK_WAIT_MS}")
            # no journal_mode switch here (the service's engine does it): switching needs the
            # exclusive lock while holding a shared one, which can deadlock two migrators
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _upgrade(conn: Connection, revision: str) -> None:
    config = _config()
    config.attributes["connection"] = conn
    command.upgrade(config, revision)


async def upgrade_database(url: str, revision: str = "head") -> UpgradeResult:
    """Bring the database at `url` to the newest revision (or `revision`), under the
    migration lock."""
    engine = _migration_engine(url)
    try:
        async with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            before = await conn.run_sync(current_revision)  # on SQLite: BEGIN IMMEDIATE first
            await conn.run_sync(_upgrade, revision)
            after = await conn.run_sync(current_revision)
            await conn.commit()
    finally:
        await engine.dispose()
    result = UpgradeResult(before, after)
    if result.migrated:
        log.info("database_migrated", before=before, after=after)
    else:
        log.info("database_up_to_date", revision=after)
    return result


async def migrate(engine: AsyncEngine) -> UpgradeResult:
    """`upgrade_database` for the database `engine` points at."""
    return await upgrade_database(engine.url.render_as_string(hide_password=False))
