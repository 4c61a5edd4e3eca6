"""The agents domain's FastAPI dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from app.agents.service import AgentManager
from app.core.deps import provided


def get_manager(conn: HTTPConnection) -> AgentManager:
    return provided(conn, "manager", AgentManager)


ManagerDep = Annotated[AgentManager, Depends(get_manager)]
