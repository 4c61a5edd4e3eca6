"""`InProcessBroadcast`: one process is all the replicas there are."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from app.coordination.broadcast import Handler, Message

log = structlog.get_logger(__name__)


class InProcessBroadcast:
    backend = "in-process"

    def __init__(self, *, replica_id: str) -> None:
        self.replica_id = replica_id
        self._handlers: defaultdict[str, list[Handler]] = defaultdict(list)

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers[topic].append(handler)

    def on_reconnect(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Never called: there is no connection to lose."""

    async def start(self) -> None:
        return None

    async def publish(self, topic: str, body: dict[str, Any]) -> None:
        message = Message(topic, self.replica_id, body)
        for handler in list(self._handlers[topic]):
            try:
                await handler(message)
            except Exception:
                log.exception("broadcast_handler_failed", topic=topic)

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self._handlers.clear()
