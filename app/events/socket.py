"""The events WebSocket, `/v1/events/ws`: stored events after `after_seq`, then live ones.

A plain ASGI handler, served ahead of the middleware and FastAPI's router
(`ServiceApp.socket_paths`, app/core/service_app.py): an idle subscriber is the service's
most numerous object, and those layers' frames, held for the life of every socket, cost
about a third of its memory (bench/README.md, run 9). Once the backlog is sent, a subscriber holds
no task of its own: the hub writes each live event straight to its connection when it is
published (`LiveWriter`, through the server's `DirectSocket`), one frame serialized once for
every subscriber; the handler only reads the client's frames (pings) until either side
closes.

Query: `after_seq`, `agent`, `type`, `task_id`, `token`. Close codes: 1001 the server is
shutting down; 1003 a binary frame was sent; 1007 a frame was not JSON; 1008 bad query
parameters or authentication (before the handshake completes: HTTP 403); 1011 the backlog
could not be read; 4008 the client read too slowly and was dropped — reconnect with
`after_seq` set to the last seq received. Client frames: `{"type": "ping"}` →
`{"type": "pong"}`.
"""

from __future__ import annotations

import bisect
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from starlette.requests import HTTPConnection
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from app.core.config import Settings
from app.core.deps import provided
from app.core.metrics import Metrics
from app.core.security import key_is_valid, websocket_subprotocol, websocket_token
from app.events.hub import SLOW_CONSUMER, Hub, Subscription
from app.events.schemas import MAX_SEQ, EventFilter, LiveEvent
from app.events.service import EventBus
from app.events.stream import stored_between
from app.ws_protocol import DIRECT_FRAMES, DirectSocket, text_frame

log = structlog.get_logger(__name__)

PATH = "/v1/events/ws"
PONG = b'{"type":"pong"}'
PONG_FRAME = text_frame(PONG)
REASONS = {
    SLOW_CONSUMER: "too slow: reconnect with after_seq=<last seq received>",
    1001: "server shutting down",
    1003: "binary frames are not supported",
    1007: "frames must be JSON text",
    1011: "the stored events could not be read",
}


def parse_stream_params(conn: HTTPConnection) -> tuple[int, EventFilter]:
    params = conn.query_params
    raw_after = params.get("after_seq", "0")
    digits = raw_after.isascii() and raw_after.isdigit() and len(raw_after) <= 19
    if not digits or int(raw_after) > MAX_SEQ:
        raise ValueError(f"after_seq must be an integer from 0 to {MAX_SEQ}")
    agent, type_, task_id = params.get("agent"), params.get("type"), params.get("task_id")
    for name, value, longest in (
        ("agent", agent, 64),
        ("type", type_, 64),
        ("task_id", task_id, 32),
    ):
        if value is not None and not (0 < len(value) <= longest):
            raise ValueError(f"{name} must be 1-{longest} characters")
    return int(raw_after), EventFilter(agent=agent, type=type_, task_id=task_id)


class WireCache:
    """Each event's bytes and frame, made once while the hub hands a commit's events to
    every subscriber: kept for the latest events (at most `KEEP`; all let go when full, the
    next publish makes its own again), by the event's JSON text — not by seq, which two
    stores in one process (tests, benchmarks) both give."""

    KEEP = 256

    __slots__ = ("_wires",)

    def __init__(self) -> None:
        self._wires: dict[str, tuple[bytes, bytes]] = {}

    def wire(self, event: LiveEvent) -> tuple[bytes, bytes]:
        wire = self._wires.get(event.frame)
        if wire is None:
            if len(self._wires) >= self.KEEP:
                self._wires.clear()
            payload = event.frame.encode()
            wire = self._wires[event.frame] = (payload, text_frame(payload))
        return wire


WIRE = WireCache()


class LiveWriter:
    """A subscription's sink: writes the live events to the connection at once (a commit's
    in one write), skipping those the backlog already sent, and refuses (the hub then drops
    the subscriber) once more than `limit` events are written but not yet taken by the
    client."""

    __slots__ = ("_ends", "_last_seq", "_limit", "_socket", "_written")

    def __init__(self, socket: DirectSocket, limit: int, last_seq: int) -> None:
        self._socket = socket
        self._limit = limit
        self._last_seq = last_seq
        self._written = 0
        # where each unsent event ends, counted in bytes written; None while nothing waits
        self._ends: list[int] | None = None

    def __call__(self, events: Sequence[LiveEvent]) -> bool:
        last = self._last_seq
        if events[0].seq <= last:  # (in seq order: usually all of them are new)
            events = [event for event in events if event.seq > last]
            if not events:
                return True
        self._last_seq = events[-1].seq
        outcome = self._socket.write_now([WIRE.wire(event) for event in events])
        if outcome is None:  # closing: the handler is about to end
            return True
        sizes, unsent = outcome
        start = self._written
        self._written += sizes[0] if len(sizes) == 1 else sum(sizes)
        if unsent == 0:
            self._ends = None
            return True
        ends = self._ends if self._ends is not None else []
        for size in sizes:
            start += size
            ends.append(start)
        del ends[: bisect.bisect_right(ends, self._written - unsent)]
        self._ends = ends
        return len(ends) <= self._limit


@dataclass(frozen=True, slots=True)
class Handshake:
    authorized: bool
    subprotocol: str | None
    params: tuple[int, EventFilter] | ValueError  # (after_seq, filter) or what is wrong


def read_handshake(scope: Scope, settings: Settings) -> Handshake:
    """What the connection asks for. Read through a connection object that is let go
    afterwards, and the request's headers are dropped from the scope: nothing reads them
    again, and an idle subscriber would otherwise hold them (~1 KiB) for its lifetime."""
    conn = HTTPConnection(scope)
    try:
        params: tuple[int, EventFilter] | ValueError = parse_stream_params(conn)
    except ValueError as exc:
        params = exc
    handshake = Handshake(
        key_is_valid(settings, websocket_token(conn)), websocket_subprotocol(conn), params
    )
    scope["headers"] = []
    return handshake


async def serve_event_socket(scope: Scope, receive: Receive, send: Send) -> None:
    websocket = WebSocket(scope, receive, send)
    handshake = read_handshake(scope, provided(websocket, "settings", Settings))
    if not handshake.authorized:
        await websocket.close(code=1008, reason="unauthorized")
        return
    await websocket.accept(subprotocol=handshake.subprotocol)
    if isinstance(handshake.params, ValueError):
        message = str(handshake.params)
        await websocket.send_json(
            {"type": "error", "error": {"type": "validation_error", "message": message}}
        )
        await websocket.close(code=1008, reason=message[:120])
        return
    after_seq, where = handshake.params
    socket: DirectSocket | None = scope["extensions"].get(DIRECT_FRAMES)
    if socket is None:  # only `bigthree serve` (app/server.py) runs the service
        log.error("event_stream_unsupported_server", hint="run the service with bigthree serve")
        await websocket.close(code=1011, reason="this server cannot stream events")
        return
    metrics = provided(websocket, "metrics", Metrics)
    hub = provided(websocket, "hub", Hub)
    gauge = metrics.ws_connections.labels("events")
    gauge.inc()
    sub = hub.subscribe(where)

    def close_now() -> None:
        # the hub closes a dropped or shut-down subscriber itself, at once; the handler's
        # receive() then returns the disconnect
        code = sub.close_code or 1000
        socket.close_now(code, REASONS.get(code, ""))

    sub.on_close = close_now
    bus = provided(websocket, "bus", EventBus)
    try:
        code = await _serve(websocket, socket, bus, hub, sub, after_seq)
        if sub.close_code == SLOW_CONSUMER:
            metrics.ws_dropped.labels("events", "slow_consumer").inc()
        if code is not None and sub.close_code is None:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # the client went first
                await websocket.close(code=code, reason=REASONS.get(code, ""))
    finally:
        hub.unsubscribe(sub)
        sub.on_close = None  # the closure refers to `sub`: a cycle only the collector frees
        gauge.dec()


async def _serve(
    websocket: WebSocket,
    socket: DirectSocket,
    bus: EventBus,
    hub: Hub,
    sub: Subscription,
    after_seq: int,
) -> int | None:
    """Send the backlog, then let the hub write live events while the client's frames are
    read; the close code to send, or None when the connection is already closing."""
    snapshot = bus.last_seq  # `sub` is subscribed: anything newer reaches it
    try:
        async for event in stored_between(bus, sub.where, after_seq, snapshot):
            if sub.closed:
                return None
            await websocket.send_text(event.frame)
    except WebSocketDisconnect:
        return None
    except Exception as exc:
        if sub.closed:  # dropped or shut down meanwhile: already closing
            return None
        log.warning("event_stream_failed", error=repr(exc))  # the client resumes later
        return 1011
    if not sub.deliver_to(LiveWriter(socket, sub.limit, max(after_seq, snapshot))):
        hub.drop(sub)
        return None
    return await _read_client(websocket, socket)


async def _read_client(websocket: WebSocket, socket: DirectSocket) -> int | None:
    """Answer pings until the connection ends (None) or a frame deserves a close (its code).
    (Each message is handled in `_answer`, so none is held while the next is awaited.)"""
    while (code := _answer(await websocket.receive(), socket)) == _READ_ON:
        pass
    return code


_READ_ON = 0


def _answer(message: Message, socket: DirectSocket) -> int | None:
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")
    if text is None:
        return 1003
    try:
        frame = json.loads(text)
    except ValueError:
        return 1007
    if isinstance(frame, dict) and frame.get("type") == "ping":
        socket.write_now([(PONG, PONG_FRAME)])
    return _READ_ON
