"""Backlog-then-live delivery for one subscriber, in seq order, without gaps or duplicates."""

from __future__ import annotations

from collections.abc import AsyncIterator

from app.events.hub import Subscription
from app.events.schemas import EventFilter, LiveEvent
from app.events.service import EventBus

BACKLOG_PAGE = 500


async def replay_then_follow(
    bus: EventBus, sub: Subscription, where: EventFilter, after_seq: int
) -> AsyncIterator[LiveEvent]:
    """Yield stored events after `after_seq`, then live ones. `sub` must already be
    subscribed, so nothing stored while the backlog is read can be missed (events are
    published only after their commit, so everything up to `snapshot` is readable)."""
    snapshot = bus.last_seq
    last = after_seq
    while last < snapshot:
        page = await bus.repository.read(
            after_seq=last, until_seq=snapshot, where=where, limit=BACKLOG_PAGE
        )
        if not page:
            break
        for event in page:
            yield event
        last = page[-1].seq
    last = max(last, snapshot)
    while True:
        event = await sub.queue.get()
        if event.seq <= last:
            continue
        last = event.seq
        yield event
