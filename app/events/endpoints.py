"""Event routes: post external events, page through stored ones.

Streaming them: the WebSocket `/v1/events/ws` (app/events/socket.py, served ahead of the
middleware and FastAPI: `ServiceApp.socket_paths`) and one task's events as Server-Sent
Events (app/agents/task_events.py).
"""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Query, Response, status

from app.core.asgi import json_response
from app.core.deps import AuthDep, SettingsDep, provided
from app.core.errors import AppError
from app.core.fast_lane import LaneEntry, LaneRequest, parse_body
from app.core.openapi import problems
from app.events.deps import BusDep
from app.events.external import external_event
from app.events.schemas import MAX_SEQ, Event, EventFilter, EventIn, EventPage
from app.events.service import EventBus

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/v1", tags=["events"])

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
