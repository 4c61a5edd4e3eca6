"""Event reads: filtered pages by seq, as stored JSON text (never decoded and re-encoded).
Writes go through the store writer (app/store/writer.py)."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Select, Text, cast, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.jsonsafe import decode_stored
from app.events.schemas import EventFilter, LiveEvent, event_frame
from app.store.schema import events

_COLUMNS = (
    events.c.seq,
    events.c.ts,
    events.c.source,
    events.c.type,
    events.c.agent,
    events.c.task_id,
    events.c.session_id,
    # the stored JSON as text: SQLite keeps it so; PostgreSQL renders its JSONB (the driver
    # would otherwise decode it)
    cast(events.c.payload, Text).label("payload"),
)


class EventRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def max_seq(self) -> int:
        async with self._engine.connect() as conn:
            return int((await conn.execute(select(func.max(events.c.seq)))).scalar() or 0)

    async def read(
        self,
        *,
        after_seq: int,
        until_seq: int | None = None,
        where: EventFilter | None = None,
        limit: int = 500,
    ) -> list[LiveEvent]:
        query: Select[tuple[object, ...]] = select(*_COLUMNS).where(events.c.seq > after_seq)
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
        return [_live(row) for row in rows]


def _live(row: Any) -> LiveEvent:
    seq, ts, payload = int(row["seq"]), float(row["ts"]), str(row["payload"])
    source, type_ = str(row["source"]), str(row["type"])
    agent, task_id, session_id = row["agent"], row["task_id"], row["session_id"]
    try:
        decoded = orjson.loads(payload)
    except orjson.JSONDecodeError:
        # stored by an older version (a lone surrogate, NaN, nesting past the parser):
        # served repaired, so one row can fail neither a page nor a stream
        decoded = decode_stored(payload)
        payload = orjson.dumps(decoded).decode()
    return LiveEvent(
        seq=seq,
        ts=ts,
        source=source,
        type=type_,
        agent=agent,
        task_id=task_id,
        session_id=session_id,
        payload=decoded,
        frame=event_frame(seq, ts, source, type_, agent, task_id, session_id, payload),
    )
