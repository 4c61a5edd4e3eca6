"""Fan-out of live events to subscribers, each with its own bounded queue.

Publishing never waits: an event goes into every matching subscriber's queue with
`put_nowait`. A subscriber whose queue is full is *dropped*: its `closed` event is set with
close code `SLOW_CONSUMER` so the WebSocket handler can close it and tell the client which
seq to resume from. Slow readers therefore never block publishers or each other.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from app.events.schemas import EventFilter, LiveEvent

SLOW_CONSUMER = 4008  # app-defined close code: reconnect with after_seq=<last seq received>
GOING_AWAY = 1001  # RFC 6455: the server is shutting down


@dataclass(eq=False)
class Subscription:
    where: EventFilter
    queue: asyncio.Queue[LiveEvent]
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None

    def close(self, code: int) -> None:
        if self.close_code is None:
            self.close_code = code
        self.closed.set()


class Hub:
    def __init__(self, queue_size: int) -> None:
        self._queue_size = queue_size
        self._subs: set[Subscription] = set()
        self.dropped = 0

    def subscribe(self, where: EventFilter) -> Subscription:
        sub = Subscription(where, asyncio.Queue(self._queue_size))
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)

    def publish(self, event: LiveEvent) -> None:
        for sub in list(self._subs):
            if sub.close_code is not None or not sub.where.matches(event):
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                self.dropped += 1
                self._subs.discard(sub)
                sub.close(SLOW_CONSUMER)

    def close_all(self, code: int = GOING_AWAY) -> None:
        for sub in list(self._subs):
            sub.close(code)
        self._subs.clear()
