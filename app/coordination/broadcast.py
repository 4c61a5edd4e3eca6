"""The `Broadcast` interface: topics, JSON messages, every replica's handlers."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    origin: str  # the replica id of the publisher
    body: dict[str, Any]


Handler = Callable[[Message], Awaitable[None]]


class Broadcast(Protocol):
    """Deliver each published message to every replica's handlers of its topic, the
    publisher's own included (a handler that must skip its own compares `origin`).

    Delivery is at most once: a replica that was disconnected misses what was published
    meanwhile, and its `on_reconnect` callbacks run so it can catch up from the database.
    """

    replica_id: str
    backend: str  # "in-process" or "redis": what /ready names

    def subscribe(self, topic: str, handler: Handler) -> None:
        """Call `handler` for every message on `topic` (register before `start`)."""

    def on_reconnect(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Call `callback` after the connection to the other replicas was lost and is back."""

    async def start(self) -> None: ...

    async def publish(self, topic: str, body: dict[str, Any]) -> None:
        """Send `body` (JSON-able) to every replica; raises when the channel is down."""

    async def ping(self) -> None:
        """Raise when the channel to the other replicas is down (readiness)."""

    async def aclose(self) -> None: ...


def new_replica_id() -> str:
    """Unique per process and readable in logs: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
