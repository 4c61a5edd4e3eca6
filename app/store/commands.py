"""`bigthree db upgrade|current`: the schema commands, for the CLI to call."""

from __future__ import annotations

import asyncio
import sys

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.store.engine import sqlite_path
from app.store.migrations import head_revision, upgrade_database
from app.store.migrations.runner import current_revision


def _url() -> str:
    from app.core.config import Settings

    return Settings().resolved_database_url


def _where(url: str) -> str:
    return url.split("@")[-1]  # never print a password


async def _current(url: str) -> str | None:
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return None
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(current_revision)
    finally:
        await engine.dispose()


def db_command(action: str) -> int:
    """Run `action` ("upgrade" or "current") on BIGTHREE_DATABASE_URL; return an exit code."""
    url = _url()
    try:
        if action == "upgrade":
            result = asyncio.run(upgrade_database(url))
            print(f"{_where(url)}: at revision {result.after} (was {result.before or 'empty'})")
            return 0
        current = asyncio.run(_current(url))
    except (OperationalError, DBAPIError, OSError) as exc:
        print(f"bigthree: database {_where(url)} unavailable: {exc}", file=sys.stderr)
        return 1
    head = head_revision()
    state = "up to date" if current == head else f"behind (newest is {head})"
    print(f"{_where(url)}: revision {current or 'none'}, {state}")
    return 0 if current == head else 3
