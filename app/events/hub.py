"""Fan-out of live events to subscribers, each with its own bounded queue.

Publishing never waits: the events of one commit go, in order, into every matching
subscriber's queue with `offer` (handed over together, so a WebSocket writes them in one
system call). A subscriber whose buffer is full is *dropped*: it is closed with close code
`SLOW_CONSUMER` so the WebSocket handler can close it and tell the client which
seq to resume from. Slow readers therefore never block publishers or each other.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence

from app.events.schemas import EventFilter, LiveEvent

SLOW_CONSUMER = 4008  # app-defined close code: reconnect with after_seq=<last seq received>
GOING_AWAY = 1001  # RFC 6455: the server is shutting down

# takes events in order; False when its reader has fallen too far behind
Sink = Callable[[Sequence[LiveEvent]], bool]


class Subscription:
    """One subscriber's bounded buffer of live events.

    Kept small because every open event stream holds one: a deque only once an event is
    buffered, one future only while the reader waits (an asyncio.Queue plus an
    asyncio.Event cost ~6 KB per idle subscriber in deques alone), and with a sink
    (`deliver_to`) no buffer at all.
    """

    __slots__ = ("_events", "_limit", "_sink", "_waiter", "close_code", "on_close", "where")

    def __init__(self, where: EventFilter, limit: int) -> None:
        self.where = where
        self.close_code: int | None = None
        # called once when closed: the events WebSocket closes its connection from it at once,
        # even while the client reads nothing
        self.on_close: Callable[[], object] | None = None
        self._limit = limit
        self._events: deque[LiveEvent] | None = None  # ~0.6 KiB even empty: made on demand
        self._waiter: asyncio.Future[None] | None = None
        self._sink: Sink | None = None

    def offer(self, events: Sequence[LiveEvent]) -> bool:
        """Buffer `events`, in order (or hand them to the sink); False when the buffer
        fills up (the subscriber is dropped then, with what it buffered) or the sink's
        reader has fallen too far behind."""
        if self._sink is not None:
            return self._sink(events)
        if self._events is None:
            self._events = deque()
        for event in events:
            if len(self._events) >= self._limit:
                return False
            self._events.append(event)
        self._wake()
        return True

    def deliver_to(self, sink: Sink) -> bool:
        """From now on hand the events to `sink` when they are published instead of
        buffering them, starting with those buffered so far; False (the sink refused them)
        means the reader is too slow already."""
        if self._events and not sink(list(self._events)):
            return False
        self._events = None
        self._sink = sink
        return True

    def close(self, code: int) -> None:
        if self.close_code is None:
            self.close_code = code
            if self.on_close is not None:
                self.on_close()
        self._wake()

    @property
    def closed(self) -> bool:
        return self.close_code is not None

    @property
    def limit(self) -> int:
        """The most events buffered (or written and not yet read) before a drop."""
        return self._limit

    @property
    def pending(self) -> int:
        """Events buffered and not yet taken."""
        return len(self._events) if self._events is not None else 0

    async def next(self) -> LiveEvent | None:
        """The next buffered event, waiting for one; None once the subscription is closed
        (buffered events are dropped then: a closed reader resumes with after_seq)."""
        while not self._events:
            if self.close_code is not None:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self.close_code is not None:
            return None
        return self._events.popleft()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class Hub:
    """The open subscriptions, grouped by filter: a publish asks each distinct filter once
    whether it wants the events, not each subscriber (a thousand dashboards watching the
    same stream share one filter)."""

    def __init__(self, queue_size: int) -> None:
        self._queue_size = queue_size
        # each filter's subscribers, in the order they came (a dict: an ordered set)
        self._groups: dict[EventFilter, dict[Subscription, None]] = {}
        self._count = 0
        self.dropped = 0

    def subscribe(self, where: EventFilter) -> Subscription:
        sub = Subscription(where, self._queue_size)
        self._groups.setdefault(where, {})[sub] = None
        self._count += 1
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        group = self._groups.get(sub.where)
        if group is None or sub not in group:
            return
        del group[sub]
        self._count -= 1
        if not group:
            del self._groups[sub.where]

    @property
    def subscriber_count(self) -> int:
        return self._count

    def publish(self, events: Sequence[LiveEvent]) -> None:
        """Offer each subscriber the events (one commit's, in seq order) it asked for."""
        only = events[0] if len(events) == 1 else None  # one event to many: no list each
        for where, group in list(self._groups.items()):
            if only is not None:
                if not where.matches(only):
                    continue
                matching = events
            else:
                matching = [event for event in events if where.matches(event)]
                if not matching:
                    continue
            for sub in list(group):
                if sub.close_code is None and not sub.offer(matching):
                    self.drop(sub)

    def drop(self, sub: Subscription) -> None:
        """Close a subscriber that cannot keep up (`SLOW_CONSUMER`)."""
        self.dropped += 1
        self.unsubscribe(sub)
        sub.close(SLOW_CONSUMER)

    def close_all(self, code: int = GOING_AWAY) -> None:
        groups, self._groups, self._count = self._groups, {}, 0
        for group in groups.values():
            for sub in group:
                sub.close(code)
