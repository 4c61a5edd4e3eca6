"""Backlog-then-live delivery for one subscriber, in seq order, without gaps or duplicates."""

from __future__ import annotations

from collections.abc import AsyncIterator

from app.events.hub import Subscription
from app.events.schemas import Event, EventFilter
from app.events.service import EventBus

BACKLOG_PAGE = 500


async def replay_then_follow(
    bus: EventBus, sub: Subscription, where: EventFilter, after_seq: int
) -> AsyncIterator[Event]:
    """Yield stored events after `after_seq`, then live ones until `sub` is closed. `sub`
    must already be subscribed, so nothing emitted while the backlog is read can be missed."""
    snapshot = bus.last_seq
    await bus.flush(within_s=10.0)
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
    while (live := await sub.next()) is not None:
        if live.seq <= last:
            continue
        last = live.seq
        yield live
