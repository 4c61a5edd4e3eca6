"""`RedisBroadcast`: Redis pub/sub between replicas, reconnecting by itself.

Channels are `<prefix>:<topic>`, so several installations (or test runs) can share one
Redis. One listener task reads them all (one pattern subscription, `<prefix>:*`); when
Redis goes away it retries with a capped backoff and, once back, runs the `on_reconnect`
callbacks (pub/sub keeps nothing for absent subscribers, so whatever was published
meanwhile must be re-read from the database). Publishing while Redis is down raises
`BroadcastUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from app.coordination.broadcast import Handler, Message
from app.core.errors import ServiceUnavailable

log = structlog.get_logger(__name__)

RECONNECT_WAITS_S = (0.1, 0.25, 0.5, 1.0, 2.0)  # then 2 s between attempts
OPERATION_TIMEOUT_S = 2.0


class BroadcastUnavailable(ServiceUnavailable):
    """Redis, which carries messages between replicas, cannot be reached."""


class RedisBroadcast:
    backend = "redis"

    def __init__(self, url: str, *, prefix: str, replica_id: str) -> None:
        self.replica_id = replica_id
        self._prefix = prefix.rstrip(":") + ":"
        self._client = aioredis.Redis.from_url(
            url,
            socket_timeout=OPERATION_TIMEOUT_S,
            socket_connect_timeout=OPERATION_TIMEOUT_S,
            health_check_interval=10,
        )
        self._handlers: defaultdict[str, list[Handler]] = defaultdict(list)
        self._reconnected: list[Callable[[], Awaitable[None]]] = []
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self.connected = False

    def channel(self, topic: str) -> str:
        return f"{self._prefix}{topic}"

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers[topic].append(handler)

    def on_reconnect(self, callback: Callable[[], Awaitable[None]]) -> None:
        self._reconnected.append(callback)

    async def start(self) -> None:
        """Start listening; returns once subscribed (or after a short wait if Redis is
        down: the listener keeps trying, and /ready says redis is unreachable)."""
        self._listener = asyncio.create_task(self._listen(), name="redis-broadcast")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(OPERATION_TIMEOUT_S):
                await self._subscribed.wait()

    async def publish(self, topic: str, body: dict[str, Any]) -> None:
        data = json.dumps({"origin": self.replica_id, "body": body})
        try:
            await self._client.publish(self.channel(topic), data)
        except (RedisError, OSError) as exc:
            raise BroadcastUnavailable(
                f"redis unreachable: {type(exc).__name__}", dependency="redis"
            ) from exc

    async def ping(self) -> None:
        await self._client.ping()

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._client.aclose()

    async def _listen(self) -> None:
        failures = 0
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                # one pattern for every topic: handlers subscribed later need no resubscribe
                await pubsub.psubscribe(f"{self._prefix}*")
                was_down = failures > 0
                failures = 0
                self.connected = True
                self._subscribed.set()
                if was_down:
                    log.info("redis_reconnected")
                    await self._run_reconnected()
                await self._pump(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost or refused: retry below
                if self.connected or failures == 0:
                    log.warning("redis_unreachable", error=f"{type(exc).__name__}: {exc}")
                self.connected = False
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            wait = RECONNECT_WAITS_S[min(failures, len(RECONNECT_WAITS_S) - 1)]
            failures += 1
            await asyncio.sleep(wait)

    async def _pump(self, pubsub: aioredis.client.PubSub) -> None:
        while True:
            raw = await pubsub.get_message(timeout=5.0)
            if raw is None:
                await pubsub.ping()  # notice a dead connection even when nothing is sent
                continue
            if raw.get("type") != "pmessage":
                continue
            await self._deliver(raw["channel"], raw["data"])

    async def _deliver(self, channel: bytes | str, data: bytes | str) -> None:
        name = channel.decode() if isinstance(channel, bytes) else channel
        topic = name.removeprefix(self._prefix)
        try:
            decoded = json.loads(data)
            message = Message(topic, str(decoded["origin"]), dict(decoded["body"]))
        except (ValueError, KeyError, TypeError):
            log.warning("broadcast_message_malformed", channel=name)
            return
        for handler in list(self._handlers.get(topic, ())):
            try:
                await handler(message)
            except Exception:
                log.exception("broadcast_handler_failed", topic=topic)

    async def _run_reconnected(self) -> None:
        for callback in list(self._reconnected):
            try:
                await callback()
            except Exception:
                log.exception("broadcast_reconnect_callback_failed")
