"""`bigthree_tasks_queued` for replicas: the shared queue's depth, counted in the database.

With replicas on PostgreSQL the queue is the database (app/agents/claims.py): no replica
knows it from memory, so each counts the tasks in state `queued` — all of them, whichever
replica took them — and every replica reports the same value (aggregate it with `max`, not
`sum`). The scheduler asks for a refresh on each of its rounds (at least one a second); a
count runs only after a task event that may have changed it, and at most once every
`every_s`: an idle cluster runs no query, a busy one one per replica every few seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable

from prometheus_client import Gauge

from app.events.stream import TERMINAL_TASK_EVENTS

REFRESH_S = 2.0
# a task enters the queue, leaves it for a replica, or leaves it cancelled
QUEUE_EVENTS = TERMINAL_TASK_EVENTS | {"task.queued", "task.running"}


class QueueDepth:
    def __init__(
        self,
        count: Callable[[], Awaitable[int]],
        gauge: Gauge,
        *,
        every_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._count = count
        self._gauge = gauge
        self._every_s = every_s
        self._clock = clock
        self._changed = True  # unknown until first counted
        self._counted_at = -math.inf

    def saw(self, event_type: str) -> None:
        """Note an event from the shared log (every replica's)."""
        if event_type in QUEUE_EVENTS:
            self._changed = True

    async def refresh(self) -> None:
        """Count the queued tasks if the queue may have changed and the last count is old
        enough; a failed count is tried again on a later round."""
        now = self._clock()
        if not self._changed or now - self._counted_at < self._every_s:
            return
        # cleared before counting: an event seen meanwhile asks for the next count
        self._changed = False
        self._counted_at = now
        try:
            self._gauge.set(await self._count())
        except BaseException:
            self._changed = True
            raise
