"""The providers domain's FastAPI dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from app.core.deps import provided
from app.providers.control import BreakerControl
from app.providers.gateway import ProviderGateway


async def get_gateway(conn: HTTPConnection) -> ProviderGateway:
    return provided(conn, "gateway", ProviderGateway)


async def get_breaker_control(conn: HTTPConnection) -> BreakerControl:
    return provided(conn, "breaker_control", BreakerControl)


GatewayDep = Annotated[ProviderGateway, Depends(get_gateway)]
BreakerControlDep = Annotated[BreakerControl, Depends(get_breaker_control)]
