"""Fixtures the integration tests of the PostgreSQL store share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.store.engine import create_engine
from app.store.migrations import upgrade_database


@pytest.fixture
async def engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the test's own PostgreSQL database, migrated to the current schema."""
    await upgrade_database(pg_url)
    engine = create_engine(pg_url)
    yield engine
    await engine.dispose()
