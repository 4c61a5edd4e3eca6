"""The typed application state built once by the lifespan, and its FastAPI dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from app.agents.service import AgentManager
from app.core.config import Settings
from app.core.metrics import Metrics
from app.core.security import check_request
from app.events.hub import Hub
from app.events.service import EventBus
from app.providers.gateway import ProviderGateway
from app.store.writer import StoreWriter


@dataclass(frozen=True, slots=True)
class State:
    settings: Settings
    metrics: Metrics
    engine: AsyncEngine
    hub: Hub
    bus: EventBus
    writer: StoreWriter
    manager: AgentManager
    gateway: ProviderGateway


# async dependencies: FastAPI runs a sync one in the thread pool, a hand-off per request


async def get_state(request: Request) -> State:
    state: State = request.app.state.bigthree
    return state


async def get_manager(request: Request) -> AgentManager:
    state: State = request.app.state.bigthree
    return state.manager


async def get_bus(request: Request) -> EventBus:
    state: State = request.app.state.bigthree
    return state.bus


async def get_gateway(request: Request) -> ProviderGateway:
    state: State = request.app.state.bigthree
    return state.gateway


async def require_auth(request: Request) -> None:
    state: State = request.app.state.bigthree
    check_request(state.settings, request)


StateDep = Annotated[State, Depends(get_state)]
ManagerDep = Annotated[AgentManager, Depends(get_manager)]
BusDep = Annotated[EventBus, Depends(get_bus)]
GatewayDep = Annotated[ProviderGateway, Depends(get_gateway)]
AuthDep = Depends(require_auth)
