"""LogFollower over a real PostgreSQL log and a real Redis: every replica's subscribers get
every replica's stored events, in seq order, without gaps or duplicates."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.coordination import RedisBroadcast
from app.events.follow import LogFollower
from app.events.hub import Hub, Subscription
from app.events.repository import EventRepository
from app.events.schemas import EventFilter
from app.store.pg_backend import PostgresWriteBackend
from app.store.rows import NewEvent
from tests.support.servers import PrivateRedis, redis_prefix


@dataclass
class Replica:
    url: str
    repository: EventRepository
    hub: Hub
    broadcast: RedisBroadcast
    follower: LogFollower
    sub: Subscription

    async def received(self, count: int, timeout_s: float = 10.0) -> list[int]:
        seqs: list[int] = []
        async with asyncio.timeout(timeout_s):
            while len(seqs) < count:
                event = await self.sub.next()
                assert event is not None, "the subscription was closed"
                seqs.append(event.seq)
        return seqs


@pytest.fixture
def prefix() -> Iterator[tuple[str, str]]:
    with redis_prefix() as found:
        yield found


async def start_replica(
    engine: AsyncEngine, redis_url: str, key_prefix: str, name: str, poll_s: float = 5.0
) -> Replica:
    repository = EventRepository(engine)
    hub = Hub(100)
    broadcast = RedisBroadcast(redis_url, prefix=key_prefix, replica_id=name)
    follower = LogFollower(repository, hub, broadcast, poll_s=poll_s)
    await broadcast.start()
    await follower.start()
    url = engine.url.render_as_string(hide_password=False)
    return Replica(url, repository, hub, broadcast, follower, hub.subscribe(EventFilter()))


async def stop(*replicas: Replica) -> None:
    for replica in replicas:
        await replica.follower.aclose()
        await replica.broadcast.aclose()


def events(first: int, last: int) -> list[NewEvent]:
    """Events expected to be numbered first..last (the store numbers them)."""
    return [
        NewEvent(time.time(), "service", "test.event", None, None, None, {"n": n}, f'{{"n":{n}}}')
        for n in range(first, last + 1)
    ]


async def commit(replica: Replica, batch: list[NewEvent]) -> None:
    """What a replica's writer does: store the batch (the store numbers it), then announce."""
    backend = PostgresWriteBackend(replica.url)
    await backend.open()
    try:
        (seqs,) = await backend.commit([batch])
    finally:
        await backend.close()
    assert [e.payload["n"] for e in batch] == seqs  # numbered as the test expects
    await replica.follower.announce(seqs[-1])


async def test_every_replica_delivers_every_replicas_events_in_order(
    engine: AsyncEngine, prefix: tuple[str, str]
) -> None:
    """Replicas a and b each commit batches; both hubs deliver 1..9 in order, once each,
    long before the poll interval (the Redis hint wakes them)."""
    url, key_prefix = prefix
    a = await start_replica(engine, url, key_prefix, "a")
    b = await start_replica(engine, url, key_prefix, "b")
    try:
        await commit(a, events(1, 3))
        await commit(b, events(4, 6))
        await commit(a, events(7, 9))
        for replica in (a, b):
            assert await replica.received(9, timeout_s=4.0) == list(range(1, 10))
            assert replica.sub.pending == 0
            await replica.follower.caught_up(9, within_s=1.0)
            assert replica.follower.last_seq == 9
    finally:
        await stop(a, b)


async def test_a_follower_starts_after_the_stored_log(
    engine: AsyncEngine, prefix: tuple[str, str]
) -> None:
    """Events stored before a replica starts are the backlog (served from the store on
    request); its hub delivers only what comes after."""
    url, key_prefix = prefix
    a = await start_replica(engine, url, key_prefix, "a")
    try:
        await commit(a, events(1, 5))
        assert await a.received(5) == [1, 2, 3, 4, 5]
        late = await start_replica(engine, url, key_prefix, "late")
        try:
            assert late.follower.last_seq == 5
            await commit(a, events(6, 6))
            assert await late.received(1) == [6]
        finally:
            await stop(late)
    finally:
        await stop(a)


async def test_events_stored_while_redis_is_down_still_arrive(engine: AsyncEngine) -> None:
    """With Redis gone the hints are lost, not the events: the follower finds them in the
    store by itself (poll), and keeps order when Redis is back."""
    server = PrivateRedis()
    a = await start_replica(engine, server.url, "t", "a", poll_s=0.2)
    b = await start_replica(engine, server.url, "t", "b", poll_s=0.2)
    try:
        await commit(a, events(1, 2))
        assert await b.received(2) == [1, 2]
        server.stop()
        await commit(a, events(3, 4))  # announce fails quietly
        assert await b.received(2) == [3, 4]
        server.start()
        await commit(b, events(5, 5))
        assert await a.received(5) == [1, 2, 3, 4, 5]
        assert await b.received(1) == [5]
    finally:
        await stop(a, b)
        server.close()
