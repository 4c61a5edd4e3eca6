"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from app.core.errors import DEFAULT_RETRY_AFTER_S
from app.core.openapi import problems
from app.core.security import check_request
from app.state import AuthDep, StateDep
from app.store.engine import ping

router = APIRouter(tags=["health"])


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str]
    reasons: list[str]


_NOT_READY = {
    "model": Readiness,
    "description": "Not ready: `reasons` says why; retry after `Retry-After` seconds",
    "headers": problems(503)[503]["headers"],
}


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up and serving HTTP. Never authenticated."""
    return {"status": "ok"}


@router.get(
    "/ready",
    dependencies=[AuthDep],
    response_model=Readiness,
    responses={**problems(401), 503: _NOT_READY},
)
async def ready(state: StateDep) -> JSONResponse:
    """Able to take work: store reachable and not draining (503 with reasons otherwise)."""
    reasons: list[str] = []
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(2.0):
            await ping(state.engine)
        checks["store"] = "ok"
    except Exception as exc:  # any failure to reach the store means "not ready"
        checks["store"] = "unreachable"
        reasons.append(f"store unreachable: {type(exc).__name__}")
    checks["draining"] = "yes" if state.manager.draining else "no"
    if state.manager.draining:
        reasons.append("draining: the service is shutting down")
    ok = not reasons
    body = Readiness(status="ready" if ok else "not_ready", checks=checks, reasons=reasons)
    if ok:
        return JSONResponse(body.model_dump())
    retry = {"Retry-After": str(DEFAULT_RETRY_AFTER_S[503])}
    return JSONResponse(body.model_dump(), status_code=503, headers=retry)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"},
        **problems(401),
    },
)
async def metrics(request: Request, state: StateDep) -> Response:
    if state.settings.metrics_require_auth:
        check_request(state.settings, request)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
