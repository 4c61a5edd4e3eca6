"""Event routes: post external events, page through stored ones, stream them over WebSocket,
and follow one task's events as Server-Sent Events.

WebSocket `/v1/events/ws?after_seq=&agent=&type=&task_id=&token=` sends each event as one
JSON text frame (a browser, which cannot set headers on a WebSocket, offers its key as the
subprotocol `bearer.<base64url key>` next to `bigthree.v1`). Close codes: 1001 the server is
shutting down; 1003 a binary frame was sent; 1007 a frame was not JSON; 1008 bad query
parameters or authentication (before the handshake completes: HTTP 403); 4008 the client
read too slowly and was dropped — reconnect with `after_seq` set to the last seq received.
Client frames: `{"type": "ping"}` → `{"type": "pong"}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Header, Query, Response, WebSocket, WebSocketDisconnect, status
from fastapi.responses import StreamingResponse

from app.core.errors import InvalidInput
from app.core.security import refuse_unauthorized, websocket_subprotocol
from app.events.external import external_event
from app.events.hub import SLOW_CONSUMER, Subscription
from app.events.schemas import Event, EventFilter, EventIn, EventPage, LiveEvent
from app.events.stream import follow_task, replay_then_follow, terminal_seq
from app.state import AuthDep, BusDep, State, StateDep

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/v1", tags=["events"])

AgentFilter = Annotated[str | None, Query(max_length=64)]
TypeFilter = Annotated[str | None, Query(max_length=64)]
TaskFilter = Annotated[str | None, Query(max_length=32)]
KEEPALIVE_S = 15.0  # an SSE comment this often keeps idle proxies from closing the stream


@router.post(
    "/events", status_code=status.HTTP_201_CREATED, dependencies=[AuthDep], response_model=Event
)
async def post_event(body: EventIn, bus: BusDep) -> Response:
    """201: the event is stored (and then streamed); 503 `storage_unavailable`: it is not,
    and never will be — send it again later."""
    event = await bus.append(external_event(bus, body))
    return Response(event.frame, status_code=201, media_type="application/json")


@router.get("/events", dependencies=[AuthDep], response_model=EventPage)
async def list_events(
    state: StateDep,
    after_seq: Annotated[int, Query(ge=0)] = 0,
    agent: AgentFilter = None,
    type: TypeFilter = None,
    task_id: TaskFilter = None,
    limit: Annotated[int, Query(ge=1)] = 100,
) -> Response:
    if limit > state.settings.events_page_max:
        raise InvalidInput(f"limit must be at most {state.settings.events_page_max}")
    events, next_after, last = await state.bus.page(
        after_seq=after_seq,
        where=EventFilter(agent=agent, type=type, task_id=task_id),
        limit=limit,
    )
    # the stored JSON of each event, as is: nothing decoded and encoded again
    body = f'{{"events":[{",".join(e.frame for e in events)}],"next_after_seq":{next_after},'
    body += f'"last_seq":{last}}}'
    return Response(body, media_type="application/json")


@router.get(
    "/tasks/{task_id}/events",
    dependencies=[AuthDep],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, 204: {}},
)
async def task_events(
    task_id: str,
    state: StateDep,
    after_seq: Annotated[int, Query(ge=0)] = 0,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> Response:
    """The task's stored events, then live ones, as Server-Sent Events (`id:` is the seq,
    `data:` the event JSON); the stream ends after the task's terminal event. `Last-Event-ID`
    (or `after_seq`) resumes; 204 when the client already has the terminal event."""
    if last_event_id is not None:
        if not last_event_id.isdigit():
            raise InvalidInput("Last-Event-ID must be an event seq")
        after_seq = int(last_event_id)
    sub = state.hub.subscribe(EventFilter(task_id=task_id))
    try:
        task = await state.manager.get_task(task_id)  # 404 for unknown and malformed ids
        finished = task.state.finished
        if finished:
            seq = await terminal_seq(state.bus, task_id)
            if seq is not None and seq <= after_seq:
                state.hub.unsubscribe(sub)
                return Response(status_code=status.HTTP_204_NO_CONTENT)
    except BaseException:
        state.hub.unsubscribe(sub)
        raise
    events = follow_task(state.bus, sub, task_id, after_seq, finished=finished)
    return StreamingResponse(
        _sse_frames(state, sub, events),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


async def _sse_frames(
    state: State, sub: Subscription, events: AsyncIterator[LiveEvent]
) -> AsyncIterator[bytes]:
    """SSE framing, written here: it is three lines per event, and the libraries that do it
    patch uvicorn's signal handling, which `app.server.DrainingServer` owns. Ends when the
    events end or the subscription is closed (drain, slow reader)."""
    closed: asyncio.Future[Any] = asyncio.ensure_future(sub.closed.wait())
    pending: asyncio.Future[Any] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait(
                {pending, closed}, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED
            )
            if pending in done:
                try:
                    event = pending.result()
                except StopAsyncIteration:
                    return
                pending = None
                yield f"id: {event.seq}\ndata: {event.frame}\n\n".encode()
            elif closed in done:
                return
            else:
                yield b": keep-alive\n\n"
    finally:
        for future in (pending, closed):
            if future is not None:
                future.cancel()
        state.hub.unsubscribe(sub)


def _parse_stream_params(websocket: WebSocket) -> tuple[int, EventFilter]:
    params = websocket.query_params
    raw_after = params.get("after_seq", "0")
    if not raw_after.isdigit() or len(raw_after) > 18:
        raise ValueError("after_seq must be a non-negative integer")
    agent, type_, task_id = params.get("agent"), params.get("type"), params.get("task_id")
    for name, value, longest in (
        ("agent", agent, 64),
        ("type", type_, 64),
        ("task_id", task_id, 32),
    ):
        if value is not None and not (0 < len(value) <= longest):
            raise ValueError(f"{name} must be 1-{longest} characters")
    return int(raw_after), EventFilter(agent=agent, type=type_, task_id=task_id)


async def _send_events(websocket: WebSocket, events: AsyncIterator[LiveEvent]) -> None:
    async for event in events:
        await websocket.send_text(event.frame)


async def _read_client(websocket: WebSocket) -> int:
    """Answer pings; return the close code a bad frame deserves (or 1000 on disconnect)."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return 1000
        text = message.get("text")
        if text is None:
            return status.WS_1003_UNSUPPORTED_DATA
        try:
            frame = json.loads(text)
        except ValueError:
            return status.WS_1007_INVALID_FRAME_PAYLOAD_DATA
        if isinstance(frame, dict) and frame.get("type") == "ping":
            await websocket.send_json({"type": "pong"})


@router.websocket("/events/ws")
async def stream_events(websocket: WebSocket) -> None:
    state: State = websocket.app.state.bigthree
    if await refuse_unauthorized(state.settings, websocket):
        return
    await websocket.accept(subprotocol=websocket_subprotocol(websocket))
    try:
        after_seq, where = _parse_stream_params(websocket)
    except ValueError as exc:
        await websocket.send_json(
            {"type": "error", "error": {"type": "validation_error", "message": str(exc)}}
        )
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason=str(exc)[:120])
        return
    gauge = state.metrics.ws_connections.labels("events")
    gauge.inc()
    sub: Subscription = state.hub.subscribe(where)
    try:
        code = await _serve(websocket, state, sub, where, after_seq)
        if code == SLOW_CONSUMER:
            state.metrics.ws_dropped.labels("events", "slow_consumer").inc()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await websocket.close(code=code, reason=_reason(code))
    finally:
        state.hub.unsubscribe(sub)
        gauge.dec()


def _reason(code: int) -> str:
    return {
        SLOW_CONSUMER: "too slow: reconnect with after_seq=<last seq received>",
        1001: "server shutting down",
        1003: "binary frames are not supported",
        1007: "frames must be JSON text",
    }.get(code, "")


async def _serve(
    websocket: WebSocket, state: State, sub: Subscription, where: EventFilter, after_seq: int
) -> int:
    sender = asyncio.create_task(
        _send_events(websocket, replay_then_follow(state.bus, sub, where, after_seq))
    )
    reader = asyncio.create_task(_read_client(websocket))
    closed = asyncio.create_task(sub.closed.wait())
    try:
        done, _ = await asyncio.wait({sender, reader, closed}, return_when=asyncio.FIRST_COMPLETED)
        if closed in done:
            return sub.close_code or 1000
        if reader in done:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                return reader.result()
            return 1000
        exc = sender.exception()
        if exc is not None and not isinstance(exc, WebSocketDisconnect | RuntimeError):
            log.warning("event_stream_failed", error=repr(exc))
        return 1011 if exc is not None else 1000
    finally:
        for task in (sender, reader, closed):
            task.cancel()
        await asyncio.gather(sender, reader, closed, return_exceptions=True)
