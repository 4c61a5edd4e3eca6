"""`WS /v1/realtime?modality=audio|text&token=`: one connection is one realtime session.

Authenticated like every WebSocket (bearer header, `?token=` or the `bearer.` subprotocol;
bad credentials are refused before the handshake, as HTTP 403). The protocol and close
codes are in docs/realtime.md.
"""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, WebSocket, status

from app.core.security import refuse_unauthorized, websocket_subprotocol
from app.realtime import protocol as p
from app.realtime.service import MODALITIES, RealtimeService
from app.state import State

router = APIRouter(prefix="/v1", tags=["realtime"])


@router.websocket("/realtime")
async def realtime(websocket: WebSocket) -> None:
    state: State = websocket.app.state.bigthree
    if await refuse_unauthorized(state.settings, websocket):
        return
    service: RealtimeService = websocket.app.state.realtime
    await websocket.accept(subprotocol=websocket_subprotocol(websocket))
    modality = websocket.query_params.get("modality", "audio")
    if modality not in MODALITIES:
        message = f"modality must be one of {', '.join(MODALITIES)}"
        with contextlib.suppress(Exception):
            await websocket.send_json(p.error_frame("validation_error", message))
            await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason=message)
        return
    gauge = state.metrics.ws_connections.labels("realtime")
    gauge.inc()
    try:
        await service.serve(websocket, modality)
    finally:
        gauge.dec()
