"""Choosing the write backend for the configured database."""

from __future__ import annotations

from app.core.config import Settings
from app.store.backend import WriteBackend
from app.store.engine import BUSY_TIMEOUT_MS, sqlite_path
from app.store.pg_backend import PostgresWriteBackend
from app.store.sqlite_backend import SQLiteWriteBackend


def open_write_backend(settings: Settings) -> WriteBackend:
    url = settings.resolved_database_url
    if url.startswith("postgresql"):
        return PostgresWriteBackend(url)
    path = sqlite_path(url)
    if path is None:
        raise ValueError(
            f"no store writer for {url.split('://', 1)[0]}: the service writes to a SQLite file "
            "(sqlite+aiosqlite:///<path>) or PostgreSQL (postgresql+asyncpg://...)"
        )
    return SQLiteWriteBackend(
        path, busy_timeout_ms=BUSY_TIMEOUT_MS, synchronous=settings.sqlite_synchronous
    )
