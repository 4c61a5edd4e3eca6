"""`GET /v1/tasks/{task_id}/events`: one task's events as Server-Sent Events.

In the agents domain because it needs both the task (the AgentManager) and its events (the
bus): agents may use events, never the other way round.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.responses import StreamingResponse

from app.agents.deps import ManagerDep
from app.core.deps import AuthDep
from app.core.openapi import problems
from app.events.deps import BusDep, HubDep
from app.events.hub import Hub, Subscription
from app.events.schemas import MAX_SEQ, EventFilter, LiveEvent
from app.events.stream import follow_task, terminal_seq

router = APIRouter(prefix="/v1", tags=["events"])

KEEPALIVE_S = 15.0  # an SSE comment this often keeps idle proxies from closing the stream


@router.get(
    "/tasks/{task_id}/events",
    dependencies=[AuthDep],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, 204: {}, **problems(401, 404, 422)},
)
async def task_events(
    task_id: str,
    manager: ManagerDep,
    bus: BusDep,
    hub: HubDep,
    after_seq: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    # a plain string ("" = absent): a header is never JSON null
    last_event_id: Annotated[
        str, Header(pattern=r"^([0-9]{1,18})?$", description="an event seq")
    ] = "",
) -> Response:
    """The task's stored events, then live ones, as Server-Sent Events (`id:` is the seq,
    `data:` the event JSON); the stream ends after the task's terminal event. `Last-Event-ID`
    (or `after_seq`) resumes; 204 when the client already has the terminal event."""
    if last_event_id:  # digits only, fewer than 19: within MAX_SEQ
        after_seq = int(last_event_id)
    sub = hub.subscribe(EventFilter(task_id=task_id))
    try:
        task = await manager.get_task(task_id)  # 404 for unknown and malformed ids
        finished = task.state.finished
        if finished:
            seq = await terminal_seq(bus, task_id)
            if seq is not None and seq <= after_seq:
                hub.unsubscribe(sub)
                return Response(status_code=status.HTTP_204_NO_CONTENT)
    except BaseException:
        hub.unsubscribe(sub)
        raise
    events = follow_task(bus, sub, task_id, after_seq, finished=finished)
    return StreamingResponse(
        _sse_frames(hub, sub, events),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


async def _sse_frames(
    hub: Hub, sub: Subscription, events: AsyncIterator[LiveEvent]
) -> AsyncIterator[bytes]:
    """SSE framing, written here: it is three lines per event, and the libraries that do it
    patch uvicorn's signal handling, which `app.server.DrainingServer` owns. Ends when the
    events end — also when the subscription is closed (drain, slow reader), which ends them."""
    pending: asyncio.Future[LiveEvent] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait({pending}, timeout=KEEPALIVE_S)
            if pending not in done:
                yield b": keep-alive\n\n"
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield f"id: {event.seq}\ndata: {event.frame}\n\n".encode()
    finally:
        if pending is not None:
            pending.cancel()
        hub.unsubscribe(sub)
