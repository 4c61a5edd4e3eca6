"""The event bus: assigns `seq`, fans out live, persists in batches, serves resumable reads.

`emit()` is synchronous and cheap — callers on hot paths (provider calls, hooks) never wait
for the database. Seqs come from an in-memory counter seeded from the store at start-up
(one process owns the database), so they are gap-free and strictly increasing. A background
writer flushes pending events in batches; `flush()` waits until everything emitted so far is
stored, which is what resumable reads and graceful shutdown rely on.

Resume without gaps or duplicates (`open_stream`): subscribe first (live events from now on
are queued), note the newest seq `S`, flush, read the stored backlog `(after_seq, S]`, then
deliver queued live events with seq > the last one sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import structlog

from app.core.jsonsafe import normalise
from app.events.hub import Hub
from app.events.repository import EventRepository
from app.events.schemas import Event, EventFilter, EventPage

log = structlog.get_logger(__name__)

EventListener = Callable[[Event], None]


class EventBus:
    def __init__(
        self,
        repository: EventRepository,
        hub: Hub,
        *,
        payload_max_bytes: int = 65_536,
        retention: int = 1_000_000,
    ) -> None:
        self.repository = repository
        self.hub = hub
        self._payload_max = payload_max_bytes
        self._retention = retention
        self._last_seq = 0
        self._stored_seq = 0
        self._pending: list[Event] = []
        self._wake = asyncio.Event()
        self._stored = asyncio.Condition()
        self._writer: asyncio.Task[None] | None = None
        self._listeners: list[EventListener] = []
        self._flushes = 0

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def add_listener(self, listener: EventListener) -> None:
        self._listeners.append(listener)

    async def start(self) -> None:
        self._last_seq = self._stored_seq = await self.repository.max_seq()
        self._writer = asyncio.create_task(self._write_loop(), name="event-writer")

    async def stop(self) -> None:
        await self.flush(within_s=10.0)
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    def emit(
        self,
        type: str,
        *,
        source: str = "service",
        agent: str | None = None,
        task_id: str | None = None,
        session_id: str | None = None,
        payload: dict[str, Any] | None = None,
        ts: float | None = None,
    ) -> Event:
        self._last_seq += 1
        event = Event(
            seq=self._last_seq,
            ts=ts if ts is not None else time.time(),
            source=source,
            type=type,
            agent=agent,
            task_id=task_id,
            session_id=session_id,
            payload=normalise(payload or {}, self._payload_max),
        )
        self._pending.append(event)
        self._wake.set()
        self.hub.publish(event)
        for listener in self._listeners:
            listener(event)
        return event

    async def flush(self, within_s: float | None = None) -> None:
        """Wait until every event emitted before this call is stored."""
        target = self._last_seq
        async with asyncio.timeout(within_s), self._stored:
            await self._stored.wait_for(lambda: self._stored_seq >= target)

    async def page(self, *, after_seq: int, where: EventFilter, limit: int) -> EventPage:
        """Stored events after `after_seq` (everything emitted so far included), in order."""
        await self.flush(within_s=10.0)
        events = await self.repository.read(after_seq=after_seq, where=where, limit=limit)
        next_after = events[-1].seq if events else after_seq
        return EventPage(events=events, next_after_seq=next_after, last_seq=self._last_seq)

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            try:
                await self.repository.insert_many(batch)
            except Exception:
                log.exception("event_write_failed", count=len(batch))
                self._pending[:0] = batch  # keep order; retry after a pause
                self._wake.set()
                await asyncio.sleep(0.5)
                continue
            async with self._stored:
                self._stored_seq = batch[-1].seq
                self._stored.notify_all()
            self._flushes += 1
            if self._flushes % 1000 == 0:
                await self._prune()

    async def _prune(self) -> None:
        try:
            deleted = await self.repository.prune(self._retention)
        except Exception:
            log.exception("event_prune_failed")
            return
        if deleted:
            log.info("events_pruned", deleted=deleted, kept=self._retention)
