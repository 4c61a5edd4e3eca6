"""uvicorn's WebSocket protocol, with a close that cannot leave a socket hanging and a
way to write frames without a round through ASGI.

Closing. uvicorn's own close (a) first waits until the transport is writable — never, for a
client that stopped reading — and (b) when the peer does not answer the close frame, calls
`transport.close()`, which asyncio only carries out once every buffered byte is sent. A
slow reader the hub dropped (4008) therefore kept its server-side socket ESTABLISHED with
megabytes unsent until the client went away by itself. Here the close frame is queued
behind what the client has not read yet, without waiting, and a client that does not read
up to it and answer within `CLOSE_GRACE_S` is aborted (the socket and its buffers are freed
at once; the client sees an abnormal closure and resumes with `after_seq` like after any
drop).

Writing now. An accepted connection offers itself in the scope's extensions under
`DIRECT_FRAMES` (`DirectSocket`): the event fan-out writes one event to a thousand
subscribers as a thousand synchronous `transport.write`s of one frame serialized once,
instead of a thousand ASGI sends, each a task wake-up, an await and a framing of its own
(bench/README.md, run 9). ASGI has no such call, hence this extension; everything else
(handshake, reads, pings, closing) stays uvicorn's.

This leans on the sans-I/O protocol's attributes (`conn`, `queue`, `close_sent`,
`close_timer`, `read_paused`, `request`, `response`, `writable`);
tests/integration/test_backpressure.py, tests/integration/test_events.py and
tests/unit/test_event_socket_parts.py pin the behaviour, so a uvicorn release that changes
them fails there rather than in production.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any, Generic, Protocol, TypeVar

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode

CLOSE_GRACE_S = 5.0
DIRECT_FRAMES = "bigthree.direct_frames"  # the scope extension carrying the DirectSocket


def text_frame(payload: bytes) -> bytes:
    """`payload` as one unmasked, uncompressed text frame: what a server sends on a
    connection without extensions (the same bytes for every such connection)."""
    return Frame(Opcode.TEXT, payload).serialize(mask=False)


class DirectSocket(Protocol):
    def write_now(self, messages: Sequence[tuple[bytes, bytes]]) -> tuple[list[int], int] | None:
        """Send the text messages at once, in one write, each `(payload, frame)` where
        `frame` is `text_frame(payload)`. The bytes each took on the wire, and the bytes the
        connection still holds unsent; None when it is closing."""

    def close_now(self, code: int, reason: str) -> None:
        """Queue the close frame behind what is unsent, without waiting; the app's
        `receive()` then returns the disconnect."""


T = TypeVar("T")


class LeanQueue(Generic[T]):
    """What uvicorn asks of the connection's receive queue (`put_nowait`, `get`, `empty`)
    without asyncio.Queue's three deques and Event, ~3 KiB on every connection while idle;
    an item stays queued until a reader takes it, whatever happens to the readers."""

    __slots__ = ("_items", "_waiters")

    def __init__(self) -> None:
        self._items: deque[T] | None = None
        self._waiters: list[asyncio.Future[None]] | None = None

    def put_nowait(self, item: T) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        self._wake_one()

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> T:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            waiters = self._waiters if self._waiters is not None else []
            waiters.append(waiter)
            self._waiters = waiters
            try:
                await waiter
            finally:
                waiters.remove(waiter)
                if not waiters:
                    self._waiters = None
                elif self._items:  # woken, then cancelled: another reader takes the item
                    self._wake_one()
        item = self._items.popleft()
        if not self._items:
            self._items = None  # an empty deque is ~0.6 KiB: idle connections hold none
        return item

    def _wake_one(self) -> None:
        for waiter in self._waiters or ():
            if not waiter.done():
                waiter.set_result(None)
                return


class LeanFlag:
    """What uvicorn asks of its `writable` asyncio.Event (`set`, `clear`, `is_set`,
    `wait`), holding waiters only while there are some (an Event's deque is ~0.8 KiB)."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        if self._set:
            return
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        await waiter


class PromptCloseProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the same interfaces, without the per-connection deques of asyncio's classes
        self.queue = LeanQueue()  # type: ignore[assignment]
        self.writable = LeanFlag()  # type: ignore[assignment]
        self.writable.set()

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][DIRECT_FRAMES] = self

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        scope = getattr(self, "scope", None)
        if scope is not None:  # scope -> protocol -> scope: a cycle only the collector frees
            scope["extensions"].pop(DIRECT_FRAMES, None)

    async def send(self, message: Any) -> None:
        closing = (
            message["type"] == "websocket.close"
            and self.handshake_complete
            and self.initial_response is None
            and not self.close_sent
            and not self.transport.is_closing()
        )
        if closing and not self.writable.is_set():
            # the peer is not reading: do not wait for it to make room for the close frame
            self.close_now(message.get("code", 1000), message.get("reason", "") or "")
            return
        accepting = message["type"] == "websocket.accept" and not self.handshake_complete
        await super().send(message)
        if accepting and self.handshake_complete:
            # the handshake is answered: uvicorn never reads its request and response again,
            # so the response's headers go now (websockets' parser keeps its own reference
            # to the request for the connection's life: out of reach here)
            self.request = self.response = None  # type: ignore[assignment]
        if closing and self.close_sent and not self.transport.is_closing():
            self._abort_unless_answered()

    def write_now(self, messages: Sequence[tuple[bytes, bytes]]) -> tuple[list[int], int] | None:
        if self.close_sent or self.transport.is_closing():
            return None
        if self.conn.extensions:  # permessage-deflate: framed (and compressed) per connection
            frames = []
            for payload, _ in messages:
                self.conn.send_text(payload)
                frames.append(b"".join(self.conn.data_to_send()))
        elif len(messages) == 1:  # the usual case, kept short: it runs once per subscriber
            frame = messages[0][1]
            self.transport.write(frame)
            return [len(frame)], self.transport.get_write_buffer_size()
        else:
            frames = [frame for _, frame in messages]
        # one system call for the lot: a commit's events reach a subscriber together
        self.transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
        return [len(frame) for frame in frames], self.transport.get_write_buffer_size()

    def close_now(self, code: int, reason: str) -> None:
        if self.close_sent or self.transport.is_closing() or not self.handshake_complete:
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:  # the client's answer to the close must be read
            self.read_paused = False
            self.transport.resume_reading()
        self._abort_unless_answered()

    def _abort_unless_answered(self) -> None:
        if self.close_timer is not None:
            self.close_timer.cancel()
        self.close_timer = self.loop.call_later(CLOSE_GRACE_S, self.transport.abort)
