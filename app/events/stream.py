"""Backlog-then-live delivery for one subscriber, in seq order, without gaps or duplicates."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from app.events.hub import Subscription
from app.events.schemas import EventFilter, LiveEvent
from app.events.service import EventBus

BACKLOG_PAGE = 500


async def stored_between(
    bus: EventBus, where: EventFilter, after_seq: int, until_seq: int
) -> AsyncIterator[LiveEvent]:
    """Stored events with `after_seq` < seq <= `until_seq` that match `where`, in seq order."""
    last = after_seq
    while last < until_seq:
        page = await bus.repository.read(
            after_seq=last, until_seq=until_seq, where=where, limit=BACKLOG_PAGE
        )
        if not page:
            break
        for event in page:
            yield event
        last = page[-1].seq


async def replay_then_follow(
    bus: EventBus, sub: Subscription, where: EventFilter, after_seq: int
) -> AsyncIterator[LiveEvent]:
    """Yield stored events after `after_seq`, then live ones until `sub` is closed. `sub`
    must already be subscribed, so nothing stored while the backlog is read can be missed
    (events are published only after their commit, so everything up to `snapshot` is
    readable)."""
    snapshot = bus.last_seq
    async for event in stored_between(bus, where, after_seq, snapshot):
        yield event
    last = max(after_seq, snapshot)
    while (live := await sub.next()) is not None:
        if live.seq <= last:
            continue
        last = live.seq
        yield live


TERMINAL_TASK_EVENTS = frozenset(
    {"task.succeeded", "task.failed", "task.cancelled", "task.timed_out", "task.interrupted"}
)
# A task found finished whose terminal event is not stored (pruned by retention) ends its
# stream after this long without events.
FINISHED_IDLE_S = 2.0


async def terminal_seq(bus: EventBus, task_id: str) -> int | None:
    """The seq of `task_id`'s stored terminal event, if there is one. (A task reads
    finished only once its outcome is stored, and its terminal event is stored in the same
    transaction: nothing to wait for.)"""
    where = EventFilter(task_id=task_id, type="task.*")
    last = 0
    while True:
        page = await bus.repository.read(after_seq=last, where=where, limit=BACKLOG_PAGE)
        for event in page:
            if event.type in TERMINAL_TASK_EVENTS:
                return event.seq
        if len(page) < BACKLOG_PAGE:
            return None
        last = page[-1].seq


async def follow_task(
    bus: EventBus, sub: Subscription, task_id: str, after_seq: int, *, finished: bool
) -> AsyncIterator[LiveEvent]:
    """One task's events after `after_seq` (stored, then live), ending after its terminal
    event. `sub` must be subscribed with a `task_id` filter before the task's state was read;
    `finished` is that state."""
    events = replay_then_follow(bus, sub, EventFilter(task_id=task_id), after_seq).__aiter__()
    while True:
        try:
            if finished:
                async with asyncio.timeout(FINISHED_IDLE_S):
                    event = await anext(events)
            else:
                event = await anext(events)
        except (StopAsyncIteration, TimeoutError):
            return
        yield event
        if event.type in TERMINAL_TASK_EVENTS:
            return
