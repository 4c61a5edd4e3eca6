"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import HTTPConnection

from app.core.deps import MetricsDep, SettingsDep, provided
from app.core.security import check_request
from app.health.checks import Readiness

router = APIRouter(tags=["health"])

RETRY_AFTER_S = "5"


async def get_readiness(conn: HTTPConnection) -> Readiness:
    return provided(conn, "readiness", Readiness)


ReadinessDep = Annotated[Readiness, Depends(get_readiness)]


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up and serving HTTP. Never authenticated."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request, settings: SettingsDep, readiness: ReadinessDep) -> JSONResponse:
    """Able to take work: every dependency reachable (the store — `postgres` or `store` for
    SQLite — and `redis` when replicas share one) and not draining; 503 with the reasons and
    Retry-After otherwise."""
    check_request(settings, request)
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


@router.get("/metrics")
async def metrics(request: Request, settings: SettingsDep, registry: MetricsDep) -> Response:
    if settings.metrics_require_auth:
        check_request(settings, request)
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)
