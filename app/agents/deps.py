"""The agents domain's FastAPI dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from app.agents.service import AgentManager
from app.core.deps import provided


async def get_manager(conn: HTTPConnection) -> AgentManager:
    return provided(conn, "manager", AgentManager)


async def get_settled_manager(conn: HTTPConnection) -> AgentManager:
    """The manager, its reads of agents made current first (with replicas: what any replica
    stored before this request is seen by this one)."""
    manager = provided(conn, "manager", AgentManager)
    await manager.settle()
    return manager


ManagerDep = Annotated[AgentManager, Depends(get_manager)]
SettledManagerDep = Annotated[AgentManager, Depends(get_settled_manager)]
