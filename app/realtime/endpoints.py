"""`WS /v1/realtime?modality=audio|text&token=`: one connection is one realtime session.

Authenticated like every WebSocket (bearer header, `?token=` or the `bearer.` subprotocol;
bad credentials are refused before the handshake, as HTTP 403). The protocol and close
codes are in docs/realtime.md.
"""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, WebSocket, status

from app.core.deps import MetricsDep, SettingsDep, provided
from app.core.security import refuse_unauthorized, websocket_subprotocol
from app.realtime import protocol as p
from app.realtime.service import MODALITIES, RealtimeService

router = APIRouter(prefix="/v1", tags=["realtime"])


@router.websocket("/realtime")
async def realtime(websocket: WebSocket, settings: SettingsDep, metrics: MetricsDep) -> None:
    if await refuse_unauthorized(settings, websocket):
        return
    service = provided(websocket, "realtime", RealtimeService)
    await websocket.accept(subprotocol=websocket_subprotocol(websocket))
    modality = websocket.query_params.get("modality", "audio")
    if modality not in MODALITIES:
        message = f"modality must be one of {', '.join(MODALITIES)}"
        with contextlib.suppress(Exception):
            await websocket.send_json(p.error_frame("validation_error", message))
            await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason=message)
        return
    gauge = metrics.ws_connections.labels("realtime")
    gauge.inc()
    try:
        await service.serve(websocket, modality)
    finally:
        gauge.dec()
