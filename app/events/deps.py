"""The events domain's FastAPI dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from app.core.deps import provided
from app.events.hub import Hub
from app.events.service import EventBus


async def get_bus(conn: HTTPConnection) -> EventBus:
    return provided(conn, "bus", EventBus)


async def get_hub(conn: HTTPConnection) -> Hub:
    return provided(conn, "hub", Hub)


BusDep = Annotated[EventBus, Depends(get_bus)]
HubDep = Annotated[Hub, Depends(get_hub)]
