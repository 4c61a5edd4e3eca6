"""Event routes: post external events, page through stored ones, stream them over WebSocket.
(One task's events as Server-Sent Events: app/agents/task_events.py.)

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
from typing import Annotated

import structlog
from fastapi import APIRouter, Query, Response, WebSocket, WebSocketDisconnect, status

from app.core.asgi import json_response
from app.core.deps import AuthDep, MetricsDep, SettingsDep, provided
from app.core.errors import AppError
from app.core.fast_lane import LaneEntry, LaneRequest, parse_body
from app.core.openapi import problems
from app.core.security import refuse_unauthorized, websocket_subprotocol
from app.events.deps import BusDep, HubDep
from app.events.external import external_event
from app.events.hub import SLOW_CONSUMER, Subscription
from app.events.schemas import Event, EventFilter, EventIn, EventPage, LiveEvent
from app.events.service import EventBus
from app.events.stream import replay_then_follow

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/v1", tags=["events"])

MAX_SEQ = 2**63 - 1  # seqs are signed 64-bit integers in the store
PAGE_LIMIT = 1000  # the most events one page can hold (BIGTHREE_EVENTS_PAGE_MAX may lower it)

AgentFilter = Annotated[str | None, Query(min_length=1, max_length=64)]
TypeFilter = Annotated[str | None, Query(min_length=1, max_length=64)]
TaskFilter = Annotated[str | None, Query(min_length=1, max_length=32)]
AfterSeq = Annotated[int, Query(ge=0, le=MAX_SEQ)]


@router.post(
    "/events",
    status_code=status.HTTP_201_CREATED,
    dependencies=[AuthDep],
    response_model=Event,
    responses=problems(400, 401, 413, 422, 503),
)
async def post_event(body: EventIn, bus: BusDep) -> Response:
    """201: the event is stored (and then streamed); 503 `storage_unavailable`: it is not,
    and never will be — send it again later."""
    return await _store(bus, body)


async def _store(bus: EventBus, body: EventIn) -> Response:
    event = await bus.append(external_event(bus, body))
    return json_response(event.frame, status.HTTP_201_CREATED)


async def lane_post_event(request: LaneRequest) -> Response | None:
    """`post_event` through the fast lane (app/core/fast_lane.py)."""
    body = parse_body(EventIn, request.body)
    if body is None:
        return None
    try:
        return await _store(provided(request, "bus", EventBus), body)
    except AppError as exc:
        return request.error(exc)


LANE = [LaneEntry("POST", "/v1/events", lane_post_event, takes_body=True)]


@router.get(
    "/events",
    dependencies=[AuthDep],
    response_model=EventPage,
    responses=problems(401, 422, 503),
)
async def list_events(
    settings: SettingsDep,
    bus: BusDep,
    after_seq: AfterSeq = 0,
    agent: AgentFilter = None,
    type: TypeFilter = None,
    task_id: TaskFilter = None,
    limit: Annotated[
        int,
        Query(ge=1, le=PAGE_LIMIT, description="at most BIGTHREE_EVENTS_PAGE_MAX are returned"),
    ] = 100,
) -> Response:
    """Stored events after `after_seq`, oldest first; a page holds at most `limit` (and at
    most BIGTHREE_EVENTS_PAGE_MAX) events: read on with `after_seq=next_after_seq`."""
    events, next_after, last = await bus.page(
        after_seq=after_seq,
        where=EventFilter(agent=agent, type=type, task_id=task_id),
        limit=min(limit, settings.events_page_max),
    )
    # the stored JSON of each event, as is: nothing decoded and encoded again
    body = f'{{"events":[{",".join(e.frame for e in events)}],"next_after_seq":{next_after},'
    body += f'"last_seq":{last}}}'
    return json_response(body)


def _parse_stream_params(websocket: WebSocket) -> tuple[int, EventFilter]:
    params = websocket.query_params
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
async def stream_events(
    websocket: WebSocket, settings: SettingsDep, metrics: MetricsDep, bus: BusDep, hub: HubDep
) -> None:
    if await refuse_unauthorized(settings, websocket):
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
    gauge = metrics.ws_connections.labels("events")
    gauge.inc()
    sub: Subscription = hub.subscribe(where)
    try:
        code = await _serve(websocket, bus, sub, where, after_seq)
        if code == SLOW_CONSUMER:
            metrics.ws_dropped.labels("events", "slow_consumer").inc()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await websocket.close(code=code, reason=_reason(code))
    finally:
        hub.unsubscribe(sub)
        gauge.dec()


def _reason(code: int) -> str:
    return {
        SLOW_CONSUMER: "too slow: reconnect with after_seq=<last seq received>",
        1001: "server shutting down",
        1003: "binary frames are not supported",
        1007: "frames must be JSON text",
    }.get(code, "")


async def _serve(
    websocket: WebSocket, bus: EventBus, sub: Subscription, where: EventFilter, after_seq: int
) -> int:
    """Send events until the subscription closes (its code) or the client goes (theirs)."""
    sender = asyncio.create_task(
        _send_events(websocket, replay_then_follow(bus, sub, where, after_seq))
    )
    reader = asyncio.create_task(_read_client(websocket))
    sub.on_close = sender.cancel  # a drop must not wait for a send to a stalled client
    try:
        done, _ = await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
        if sub.close_code is not None:
            return sub.close_code
        if reader in done:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                return reader.result()
            return 1000
        exc = sender.exception()
        if exc is not None and not isinstance(exc, WebSocketDisconnect | RuntimeError):
            log.warning("event_stream_failed", error=repr(exc))
        return 1011 if exc is not None else 1000
    finally:
        for task in (sender, reader):
            task.cancel()
        await asyncio.gather(sender, reader, return_exceptions=True)
