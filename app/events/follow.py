"""LogFollower: live events of every replica, read from the stored log, in seq order.

With several replicas the event log in PostgreSQL is the one truth: each replica commits its
own events there (seqs assigned in commit order, see the PostgreSQL store backend), then
broadcasts a wake-up hint on the `events` topic. Every replica's follower, woken, reads the
log after the last seq it delivered and hands those events to its local hub — so every
subscriber on every replica sees the same events in the same order, only ever stored ones,
with no gap and no duplicate. A hint lost (Redis restarting) costs only latency: the
follower also reads after a reconnect and at least every `poll_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from app.coordination import Broadcast, Message
from app.events.hub import Hub
from app.events.repository import EventRepository
from app.events.schemas import LiveEvent

log = structlog.get_logger(__name__)

TOPIC = "events"
PAGE = 1000
FAILURE_WAIT_S = 0.5


class LogFollower:
    def __init__(
        self,
        repository: EventRepository,
        hub: Hub,
        broadcast: Broadcast,
        *,
        poll_s: float = 1.0,
        on_batch: Callable[[list[LiveEvent]], Awaitable[None]] | None = None,
    ) -> None:
        self._repository = repository
        self._hub = hub
        self._broadcast = broadcast
        self._poll_s = poll_s
        self._on_batch = on_batch
        self._wake = asyncio.Event()
        self._delivered = asyncio.Condition()
        self._last = 0
        self._task: asyncio.Task[None] | None = None
        self._hints: set[asyncio.Task[None]] = set()
        broadcast.subscribe(TOPIC, self._on_hint)
        broadcast.on_reconnect(self._on_reconnect)

    @property
    def last_seq(self) -> int:
        """The newest seq handed to the hub: everything up to it is stored."""
        return self._last

    async def start(self) -> None:
        """Follow from the newest stored event on (older ones are served from the store)."""
        self._last = await self._repository.max_seq()
        self._task = asyncio.create_task(self._run(), name="event-follower")

    def notify(self, last_seq: int) -> None:
        """`announce` from synchronous code (the store writer's publish step)."""
        task = asyncio.create_task(self.announce(last_seq), name="event-hint")
        self._hints.add(task)
        task.add_done_callback(self._hints.discard)

    async def announce(self, last_seq: int) -> None:
        """Tell every replica (this one included) that events up to `last_seq` are stored."""
        self._wake.set()  # this replica need not wait for the round trip
        with contextlib.suppress(Exception):  # a lost hint costs latency, never events
            await self._broadcast.publish(TOPIC, {"last_seq": last_seq})

    async def caught_up(self, seq: int, within_s: float | None = None) -> None:
        """Wait until events up to `seq` have been handed to the hub."""
        self._wake.set()
        async with asyncio.timeout(within_s), self._delivered:
            await self._delivered.wait_for(lambda: self._last >= seq)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _on_hint(self, message: Message) -> None:
        seq: Any = message.body.get("last_seq")
        if not isinstance(seq, int) or seq > self._last:
            self._wake.set()

    async def _on_reconnect(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_s):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._catch_up()
            except Exception as exc:  # the store is away: try again shortly
                log.warning("event_follow_failed", error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(FAILURE_WAIT_S)
                self._wake.set()

    async def _catch_up(self) -> None:
        while True:
            page = await self._repository.read(after_seq=self._last, limit=PAGE)
            if page and self._on_batch is not None:
                await self._on_batch(page)  # read models first: a subscriber may ask them
            if page:
                self._hub.publish(page)
                async with self._delivered:
                    self._last = page[-1].seq
                    self._delivered.notify_all()
            if len(page) < PAGE:
                return
