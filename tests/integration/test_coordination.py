"""Coordination between replicas over a real Redis: broadcast delivery, breaker commands
reaching every replica, and /ready naming the dependency that is down."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.coordination import InProcessBroadcast, Message, RedisBroadcast
from app.coordination.redis import BroadcastUnavailable
from tests.support.procs import Proc, start_service, wait_until
from tests.support.servers import PrivatePostgres, PrivateRedis, postgres_database, redis_prefix


class Inbox:
    """Collects the messages a handler receives; `wait(n)` until it has n."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._changed = asyncio.Event()

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)
        self._changed.set()

    async def wait(self, count: int, timeout_s: float = 5.0) -> list[Message]:
        async with asyncio.timeout(timeout_s):
            while len(self.messages) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.messages


@pytest.fixture
def prefix() -> Iterator[tuple[str, str]]:
    with redis_prefix() as found:
        yield found


async def test_redis_broadcast_reaches_every_replica_of_its_prefix(
    prefix: tuple[str, str],
) -> None:
    """A message published by one replica reaches the handlers of every replica sharing the
    prefix, the publisher included, with its origin; another installation's prefix hears
    nothing."""
    url, key_prefix = prefix
    a = RedisBroadcast(url, prefix=key_prefix, replica_id="a")
    b = RedisBroadcast(url, prefix=key_prefix, replica_id="b")
    other = RedisBroadcast(url, prefix=key_prefix + "other", replica_id="c")
    inboxes = {name: Inbox() for name in ("a", "b", "c")}
    for name, broadcast in (("a", a), ("b", b), ("c", other)):
        broadcast.subscribe("breaker", inboxes[name])
        await broadcast.start()
    try:
        await a.publish("breaker", {"action": "reset", "n": 1})
        await b.publish("breaker", {"action": "reset", "n": 2})
        for name in ("a", "b"):
            got = await inboxes[name].wait(2)
            assert [(m.origin, m.body["n"]) for m in got] == [("a", 1), ("b", 2)]
        await other.publish("breaker", {"n": 3})  # proves c listens: it hears its own
        assert [m.body["n"] for m in await inboxes["c"].wait(1)] == [3]
        assert len(inboxes["a"].messages) == 2
    finally:
        for broadcast in (a, b, other):
            await broadcast.aclose()


async def test_in_process_broadcast_reaches_this_process() -> None:
    """Single-process mode: the same interface, delivered to this process's handlers."""
    broadcast = InProcessBroadcast(replica_id="solo")
    inbox = Inbox()
    broadcast.subscribe("breaker", inbox)
    await broadcast.start()
    await broadcast.publish("breaker", {"n": 1})
    assert [(m.origin, m.body) for m in inbox.messages] == [("solo", {"n": 1})]
    await broadcast.ping()
    await broadcast.aclose()


async def test_redis_restart_is_survived_and_announced() -> None:
    """Redis goes away: publishing fails with a 503-class error and ping fails; once it is
    back the listener resubscribes by itself, runs the reconnect callbacks (time to catch up
    from the database) and messages flow again."""
    server = PrivateRedis()
    broadcast = RedisBroadcast(server.url, prefix="t", replica_id="a")
    inbox = Inbox()
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    broadcast.subscribe("events", inbox)
    broadcast.on_reconnect(on_reconnect)
    try:
        await broadcast.start()
        await broadcast.publish("events", {"n": 1})
        await inbox.wait(1)
        server.stop()
        with pytest.raises(BroadcastUnavailable) as refused:
            await broadcast.publish("events", {"n": 2})
        assert refused.value.status_code == 503 and refused.value.details["dependency"] == "redis"
        with pytest.raises(Exception):  # noqa: B017 - whichever error the client raises
            await broadcast.ping()
        server.start()
        async with asyncio.timeout(15):
            await reconnected.wait()
        await broadcast.publish("events", {"n": 3})
        assert [m.body["n"] for m in await inbox.wait(2)] == [1, 3]
    finally:
        await broadcast.aclose()
        server.close()


# ---- real replicas -----------------------------------------------------------------------


def breakers(proc: Proc) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{proc.url}/v1/providers", timeout=5).json()
    return body


def openai_breaker_state(proc: Proc) -> str | None:
    (openai,) = [p for p in breakers(proc)["providers"] if p["name"] == "openai"]
    states = [b["state"] for b in openai["breakers"]]
    return states[0] if states else None


def test_a_breaker_command_applies_on_every_replica(
    tmp_path: Path, prefix: tuple[str, str]
) -> None:
    """force_open sent to replica A holds on replica B too (B's own breaker, commanded over
    Redis); reset sent to B closes A's. Each answer names the replica that gave it."""
    url, key_prefix = prefix
    env = {"BIGTHREE_REDIS_URL": url, "BIGTHREE_REDIS_PREFIX": key_prefix}
    a = start_service(tmp_path, env=env)
    b = start_service(tmp_path, env=env)
    try:
        forced = httpx.post(
            f"{a.url}/v1/providers/openai/breaker",
            json={"action": "force_open", "model": "gpt-4o-mini"},
            timeout=5,
        )
        assert forced.status_code == 200, forced.text
        assert [x["state"] for x in forced.json()["breakers"]] == ["forced_open"]
        wait_until(lambda: openai_breaker_state(b) == "forced_open", what="B to be forced open")
        assert breakers(a)["replica"] != breakers(b)["replica"]
        reset = httpx.post(
            f"{b.url}/v1/providers/openai/breaker", json={"action": "reset"}, timeout=5
        )
        assert reset.status_code == 200, reset.text
        wait_until(lambda: openai_breaker_state(a) == "closed", what="A to be reset")
        ready = httpx.get(f"{a.url}/ready", timeout=5).json()
        assert ready["checks"] == {"store": "ok", "redis": "ok", "draining": "no"}
    finally:
        a.stop()
        b.stop()


def ready(proc: Proc) -> httpx.Response:
    return httpx.get(f"{proc.url}/ready", timeout=5)


def test_ready_names_the_dependency_that_is_down_and_recovers(tmp_path: Path) -> None:
    """PostgreSQL stopped: /ready is 503 with Retry-After, `postgres: unreachable` and the
    reason; back, ready again without a restart. The same for Redis, where a breaker command
    (which must reach every replica) is refused with 503 meanwhile instead of applying on one
    replica only."""
    postgres, redis = PrivatePostgres(), PrivateRedis()
    try:
        with postgres_database(postgres.url) as db_url:
            env = {"BIGTHREE_DATABASE_URL": db_url, "BIGTHREE_REDIS_URL": redis.url}
            proc = start_service(tmp_path, env=env)
            try:
                assert ready(proc).json()["checks"] == {
                    "postgres": "ok",
                    "redis": "ok",
                    "draining": "no",
                }
                postgres.stop()
                down = ready(proc)
                assert down.status_code == 503 and down.headers["retry-after"]
                assert down.json()["checks"]["postgres"] == "unreachable"
                assert any(r.startswith("postgres unreachable") for r in down.json()["reasons"])
                postgres.start()
                wait_until(lambda: ready(proc).status_code == 200, what="postgres back")

                redis.stop()
                down = ready(proc)
                assert down.status_code == 503 and down.headers["retry-after"]
                assert down.json()["checks"] == {
                    "postgres": "ok",
                    "redis": "unreachable",
                    "draining": "no",
                }
                refused = httpx.post(
                    f"{proc.url}/v1/providers/openai/breaker",
                    json={"action": "force_open"},
                    timeout=10,
                )
                assert refused.status_code == 503 and refused.headers["retry-after"]
                assert refused.json()["error"]["dependency"] == "redis"
                redis.start()
                wait_until(lambda: ready(proc).status_code == 200, what="redis back")
            finally:
                proc.stop()
    finally:
        postgres.close()
        redis.close()
