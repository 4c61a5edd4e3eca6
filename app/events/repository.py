"""Event persistence: batch insert, filtered reads by seq, retention."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.events.schemas import Event, EventFilter
from app.store.engine import write_transaction
from app.store.schema import events


class EventRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def max_seq(self) -> int:
        async with self._engine.connect() as conn:
            return int((await conn.execute(select(func.max(events.c.seq)))).scalar() or 0)

    async def insert_many(self, batch: Sequence[Event]) -> None:
        if not batch:
            return
        async with write_transaction(self._engine) as conn:
            await conn.execute(insert(events), [e.model_dump() for e in batch])

    async def read(
        self,
        *,
        after_seq: int,
        until_seq: int | None = None,
        where: EventFilter | None = None,
        limit: int = 500,
    ) -> list[Event]:
        query: Select[tuple[object, ...]] = select(events).where(events.c.seq > after_seq)
        if until_seq is not None:
            query = query.where(events.c.seq <= until_seq)
        if where is not None and where.agent is not None:
            query = query.where(events.c.agent == where.agent)
        if where is not None and where.task_id is not None:
            query = query.where(events.c.task_id == where.task_id)
        if where is not None and where.type is not None:
            if where.type.endswith("*"):
                query = query.where(events.c.type.startswith(where.type[:-1], autoescape=True))
            else:
                query = query.where(events.c.type == where.type)
        query = query.order_by(events.c.seq).limit(limit)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [Event.model_validate(dict(row)) for row in rows]

    async def prune(self, keep_last: int) -> int:
        """Delete all but the newest `keep_last` events; return how many were deleted."""
        async with write_transaction(self._engine) as conn:
            newest = (await conn.execute(select(func.max(events.c.seq)))).scalar() or 0
            result = await conn.execute(delete(events).where(events.c.seq <= newest - keep_last))
            return int(result.rowcount or 0)
