"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict
from starlette.requests import HTTPConnection

from app.core.asgi import json_response
from app.core.deps import AuthDep, MetricsDep, SettingsDep, provided
from app.core.fast_lane import LaneEntry, LaneRequest
from app.core.openapi import problems
from app.core.security import check_request
from app.health.checks import Readiness

router = APIRouter(tags=["health"])

RETRY_AFTER_S = "5"


class ReadyBody(BaseModel):
    """What /ready answers; further fields describe the store's writes."""

    model_config = ConfigDict(extra="allow")

    status: Literal["ready", "not_ready"]
    checks: dict[str, str]
    reasons: list[str]


_NOT_READY = {
    "model": ReadyBody,
    "description": "Not ready: `reasons` says why; retry after `Retry-After` seconds",
    "headers": problems(503)[503]["headers"],
}


async def get_readiness(conn: HTTPConnection) -> Readiness:
    return provided(conn, "readiness", Readiness)


ReadinessDep = Annotated[Readiness, Depends(get_readiness)]


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up and serving HTTP. Never authenticated."""
    return {"status": "ok"}


async def lane_health(_: LaneRequest) -> Response:
    """`health` through the fast lane (app/core/fast_lane.py): probes come often."""
    return json_response(b'{"status":"ok"}')


LANE = [LaneEntry("GET", "/health", lane_health, public=True)]


@router.get(
    "/ready",
    dependencies=[AuthDep],
    response_model=ReadyBody,
    responses={**problems(401), 503: _NOT_READY},
)
async def ready(readiness: ReadinessDep) -> JSONResponse:
    """Able to take work: every dependency reachable (the store — `postgres` or `store` for
    SQLite — and `redis` when replicas share one) and not draining; 503 with the reasons and
    Retry-After otherwise."""
    report = await readiness.report()
    body: dict[str, object] = {
        "status": "ready" if report.ready else "not_ready",
        "checks": report.checks,
        "reasons": report.reasons,
        **report.details,
    }
    if report.ready:
        return JSONResponse(body)
    return JSONResponse(body, status_code=503, headers={"Retry-After": RETRY_AFTER_S})


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"},
        **problems(401),
    },
)
async def metrics(request: Request, settings: SettingsDep, registry: MetricsDep) -> Response:
    if settings.metrics_require_auth:
        check_request(settings, request)
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)
