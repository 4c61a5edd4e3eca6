"""Artifact metadata in the store, read. Only `ArtifactStore` calls this; its writes (a new
artifact, evictions) go through the store writer (app/store/writer.py) as typed rows
(`NewArtifact`, `ArtifactsEvicted` in app/store/rows.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.artifacts.schemas import Artifact
from app.store.schema import artifacts


def artifact_from_row(row: Any) -> Artifact:
    return Artifact(
        id=row["id"],
        task_id=row["task_id"],
        agent=row["agent_name"],
        kind=row["kind"],
        step=row["step"],
        action=row["action"],
        url=row["url"],
        title=row["title"],
        text=row["page_text"],
        mime_type=row["mime_type"],
        bytes=row["bytes"],
        width=row["width"],
        height=row["height"],
        sha256=row["sha256"],
        created_at=row["created_at"],
        evicted=row["evicted_at"] is not None,
    )


class ArtifactRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def for_task(self, task_id: str) -> list[Artifact]:
        query = (
            select(artifacts)
            .where(artifacts.c.task_id == task_id)
            .order_by(artifacts.c.created_at, artifacts.c.step)
        )
        async with self._engine.connect() as conn:
            return [artifact_from_row(r) for r in (await conn.execute(query)).mappings()]

    async def get(self, artifact_id: str) -> Artifact | None:
        query = select(artifacts).where(artifacts.c.id == artifact_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return artifact_from_row(row) if row else None

    async def stored_bytes(self) -> int:
        query = select(func.coalesce(func.sum(artifacts.c.bytes), 0)).where(
            artifacts.c.evicted_at.is_(None)
        )
        async with self._engine.connect() as conn:
            return int((await conn.execute(query)).scalar() or 0)

    async def oldest_stored(
        self, *, limit: int, task_id: str | None = None, keep: str | None = None
    ) -> list[Artifact]:
        """Stored (not evicted) artifacts, oldest first, optionally of one task."""
        query = select(artifacts).where(artifacts.c.evicted_at.is_(None))
        if task_id is not None:
            query = query.where(artifacts.c.task_id == task_id)
        if keep is not None:
            query = query.where(artifacts.c.id != keep)
        query = query.order_by(artifacts.c.created_at, artifacts.c.step).limit(limit)
        async with self._engine.connect() as conn:
            return [artifact_from_row(r) for r in (await conn.execute(query)).mappings()]
