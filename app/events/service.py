"""The event bus: events go to the store writer, and reach subscribers only once stored.

`emit()` is synchronous and cheap — callers on hot paths (provider calls, hooks) never wait
for the database: the event joins the writer's next group commit. The store assigns its
`seq` inside that transaction, so seqs are gap-free, strictly increasing, and never given
to two events (a seq nobody has seen may be given again after a crash — nobody saw it: an
event is published only after its commit). `append()` is the acknowledged form, for
`POST /v1/events`: it returns once the event is stored, or raises StorageUnavailable and
the event is never stored.

Each payload is encoded once (orjson); the same text is stored and sent to every
subscriber inside the event's `frame`.

Resume without gaps or duplicates (`replay_then_follow`): subscribe first (live events from
now on are queued), note the newest stored seq `S`, read the stored backlog `(after_seq,
S]`, then deliver queued live events with seq > the last one sent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import orjson
import structlog

from app.core.jsonsafe import repair
from app.events.follow import LogFollower
from app.events.hub import Hub
from app.events.repository import EventRepository
from app.events.schemas import EventFilter, LiveEvent, event_frame
from app.store.rows import EventsPruned, NewEvent
from app.store.writer import Committed, StoreWriter

log = structlog.get_logger(__name__)

EventListener = Callable[[LiveEvent], None]
PRUNE_EVERY_COMMITS = 1000


def encode_payload(payload: dict[str, Any], max_bytes: int) -> tuple[dict[str, Any], str]:
    """The payload as stored (cut down to a preview past `max_bytes`) and its JSON text."""
    try:
        encoded = orjson.dumps(payload, default=str)
    except (TypeError, orjson.JSONEncodeError) as exc:  # e.g. ints past 64 bits, cycles
        encoded = json.dumps(payload, default=str).encode() if _plain(exc) else b""
        if not encoded:
            payload = {"unencodable": True, "error": str(exc)[:200]}
            return payload, orjson.dumps(payload).decode()
    if len(encoded) <= max_bytes:
        return payload, encoded.decode()
    text = encoded.decode(errors="replace")
    cut = {"truncated": True, "original_bytes": len(encoded), "preview": text[: max_bytes // 2]}
    return cut, orjson.dumps(cut).decode()


def _plain(exc: Exception) -> bool:
    """orjson refuses a few values json.dumps takes (ints past 64 bits)."""
    return "64-bit" in str(exc)


class EventBus:
    def __init__(
        self,
        writer: StoreWriter,
        repository: EventRepository,
        hub: Hub,
        *,
        payload_max_bytes: int = 65_536,
        retention: int = 1_000_000,
    ) -> None:
        self.writer = writer
        self.repository = repository
        self.hub = hub
        self._payload_max = payload_max_bytes
        self._retention = retention
        self._listeners: list[EventListener] = []
        self._commits = 0
        self._follower: LogFollower | None = None
        writer.set_publisher(self._published)

    def follow(self, follower: LogFollower) -> None:
        """Scale-out: subscribers get their events from the log follower — every replica's,
        in seq order — instead of from this replica's commits, which only announce."""
        self._follower = follower

    @property
    def last_seq(self) -> int:
        """The newest stored seq this replica knows of (with a follower: everything up to
        it is stored, and what follows reaches the hub)."""
        if self._follower is not None:
            return max(self.writer.last_seq, self._follower.last_seq)
        return self.writer.last_seq

    def add_listener(self, listener: EventListener) -> None:
        self._listeners.append(listener)

    def new_event(
        self,
        type: str,
        *,
        source: str = "service",
        agent: str | None = None,
        task_id: str | None = None,
        session_id: str | None = None,
        payload: dict[str, Any] | None = None,
        ts: float | None = None,
    ) -> NewEvent:
        """An event to write together with other changes (see StoreWriter units)."""
        # repaired (lone surrogates, NaN, depth) and redacted before anything encodes it
        stored, text = encode_payload(repair(payload or {}), self._payload_max)
        return NewEvent(
            ts=ts if ts is not None else time.time(),
            source=source,
            type=type,
            agent=agent,
            task_id=task_id,
            session_id=session_id,
            payload=stored,
            payload_json=text,
        )

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
        soon: bool = False,
    ) -> None:
        """Record an event; it is stored with the next group commit, then published.
        `soon`: an event announcing work that starts right after it, made on the loop's
        next turn so the work goes first (`StoreWriter.write_soon`); its `ts` is now."""
        make = partial(
            self.new_event,
            type,
            source=source,
            agent=agent,
            task_id=task_id,
            session_id=session_id,
            payload=payload,
            ts=ts if ts is not None else time.time(),
        )
        if soon:
            self.writer.write_soon(lambda: (make(),), operation="events")
        else:
            self.writer.write_later(make(), operation="events")

    async def append(self, event: NewEvent) -> LiveEvent:
        """Store one event and return it (StorageUnavailable: not stored, never will be)."""
        (seq,) = await self.writer.write(event, operation="event_posted")
        return live_event(seq, event)

    async def flush(self, within_s: float) -> bool:
        """Wait until every event emitted so far is stored (or given up)."""
        return await self.writer.flush(within_s)

    async def page(
        self, *, after_seq: int, where: EventFilter, limit: int
    ) -> tuple[list[LiveEvent], int, int]:
        """Stored events after `after_seq`, in order: (events, next_after_seq, last_seq)."""
        last = self.last_seq
        events = await self.repository.read(after_seq=after_seq, where=where, limit=limit)
        next_after = events[-1].seq if events else after_seq
        return events, next_after, max(last, next_after)

    def _published(self, committed: Committed) -> None:
        follower = self._follower
        events = [live_event(seq, new) for seq, new in committed]
        if follower is None and events:
            self.hub.publish(events)
        for event in events:
            for listener in self._listeners:
                listener(event)
        if follower is not None and committed:
            follower.notify(committed[-1][0])
        self._commits += 1
        if self._commits % PRUNE_EVERY_COMMITS == 0:
            self.writer.write_later(EventsPruned(self._retention), operation="prune")


def live_event(seq: int, new: NewEvent) -> LiveEvent:
    return LiveEvent(
        seq=seq,
        ts=new.ts,
        source=new.source,
        type=new.type,
        agent=new.agent,
        task_id=new.task_id,
        session_id=new.session_id,
        payload=new.payload,
        frame=event_frame(
            seq,
            new.ts,
            new.source,
            new.type,
            new.agent,
            new.task_id,
            new.session_id,
            new.payload_json,
        ),
    )
