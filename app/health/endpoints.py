"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.core.security import check_request
from app.state import StateDep
from app.store.engine import ping

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up and serving HTTP. Never authenticated."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request, state: StateDep) -> JSONResponse:
    """Able to take work: store readable and taking writes, not draining (503 with reasons
    and Retry-After otherwise)."""
    check_request(state.settings, request)
    reasons: list[str] = []
    checks: dict[str, str] = {}
    store = state.writer.health()
    try:
        async with asyncio.timeout(2.0):
            await ping(state.engine)
        checks["store"] = "ok" if store.available else "unavailable"
    except Exception as exc:  # any failure to reach the store means "not ready"
        checks["store"] = "unreachable"
        reasons.append(f"store unreachable: {type(exc).__name__}")
    if not store.available:
        checks["store_writes"] = store.reason or "unavailable"
        kept = sum(store.pending_writes.values())
        reasons.append(
            f"store cannot take writes ({store.reason}: {store.detail}); "
            f"{kept} writes kept until it can"
        )
    checks["draining"] = "yes" if state.manager.draining else "no"
    if state.manager.draining:
        reasons.append("draining: the service is shutting down")
    ok = not reasons
    body: dict[str, object] = {
        "status": "ready" if ok else "not_ready",
        "checks": checks,
        "reasons": reasons,
    }
    if store.pending_writes:
        body["pending_writes"] = store.pending_writes
    headers = None if ok else {"Retry-After": "2"}
    return JSONResponse(body, status_code=200 if ok else 503, headers=headers)


@router.get("/metrics")
async def metrics(request: Request, state: StateDep) -> Response:
    if state.settings.metrics_require_auth:
        check_request(state.settings, request)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
