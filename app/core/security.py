"""Bearer-key authentication for HTTP routes and WebSockets."""

from __future__ import annotations

import hmac

from fastapi import Request, WebSocket, status

from app.core.config import Settings
from app.core.errors import Unauthorized


def _extract_bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def key_is_valid(settings: Settings, token: str | None) -> bool:
    if not settings.auth_enabled:
        return True
    if not token:
        return False
    # compare against every key so the time taken does not reveal which one matched
    matched = False
    for key in settings.api_keys:
        matched |= hmac.compare_digest(key.get_secret_value().encode(), token.encode())
    return matched


def check_request(settings: Settings, request: Request) -> None:
    if not key_is_valid(settings, _extract_bearer(request.headers.get("authorization"))):
        raise Unauthorized("missing or invalid bearer token", hint="Authorization: Bearer <key>")


def websocket_token(websocket: WebSocket) -> str | None:
    return _extract_bearer(websocket.headers.get("authorization")) or websocket.query_params.get(
        "token"
    )


async def refuse_unauthorized(settings: Settings, websocket: WebSocket) -> bool:
    """Close a WebSocket whose key (header or `?token=`) is missing or wrong with 1008;
    True when it was refused."""
    if key_is_valid(settings, websocket_token(websocket)):
        return False
    await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="unauthorized")
    return True
