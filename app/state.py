"""The typed application state built once by the lifespan, and its FastAPI dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine

from app.agents.service import AgentManager
from app.core.config import Settings
from app.core.metrics import Metrics
from app.core.security import check_request
from app.events.hub import Hub
from app.events.service import EventBus
from app.providers.gateway import ProviderGateway


@dataclass(frozen=True, slots=True)
class State:
    settings: Settings
    metrics: Metrics
    engine: AsyncEngine
    hub: Hub
    bus: EventBus
    manager: AgentManager
    gateway: ProviderGateway


def get_state(request: Request) -> State:
    state: State = request.app.state.bigthree
    return state


def get_manager(request: Request) -> AgentManager:
    return get_state(request).manager


def get_bus(request: Request) -> EventBus:
    return get_state(request).bus


def get_gateway(request: Request) -> ProviderGateway:
    return get_state(request).gateway


# declared so the OpenAPI document shows the bearer scheme; the check itself is
# `check_request` (the same for every route, and a no-op while no keys are set)
_bearer = HTTPBearer(auto_error=False, description="one of BIGTHREE_API_KEYS")


def require_auth(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    check_request(get_state(request).settings, request)


StateDep = Annotated[State, Depends(get_state)]
ManagerDep = Annotated[AgentManager, Depends(get_manager)]
BusDep = Annotated[EventBus, Depends(get_bus)]
GatewayDep = Annotated[ProviderGateway, Depends(get_gateway)]
AuthDep = Depends(require_auth)
