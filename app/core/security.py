"""Bearer-key authentication for HTTP routes and WebSockets.

A WebSocket carries the key in the `Authorization` header, in `?token=`, or — for browsers,
which can set neither header nor, safely, a URL — as a subprotocol, the way Kubernetes does:
the client offers `bearer.<key as unpadded base64url>` together with `bigthree.v1`, and the
server selects `bigthree.v1` (never echoing the key back).
"""

from __future__ import annotations

import base64
import binascii
import hmac

from fastapi import Request, WebSocket, status
from starlette.requests import HTTPConnection

from app.core.config import Settings
from app.core.errors import Unauthorized


def extract_bearer(header: str | None) -> str | None:
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
    if not key_is_valid(settings, extract_bearer(request.headers.get("authorization"))):
        raise Unauthorized("missing or invalid bearer token", hint="Authorization: Bearer <key>")


BEARER_SUBPROTOCOL_PREFIX = "bearer."
SUBPROTOCOL = "bigthree.v1"


def _offered_subprotocols(websocket: HTTPConnection) -> list[str]:
    header = websocket.headers.get("sec-websocket-protocol", "")
    return [part.strip() for part in header.split(",") if part.strip()]


def _subprotocol_token(websocket: HTTPConnection) -> str | None:
    for offered in _offered_subprotocols(websocket):
        if offered.startswith(BEARER_SUBPROTOCOL_PREFIX):
            encoded = offered.removeprefix(BEARER_SUBPROTOCOL_PREFIX)
            try:
                return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
    return None


def websocket_token(websocket: HTTPConnection) -> str | None:
    return (
        extract_bearer(websocket.headers.get("authorization"))
        or websocket.query_params.get("token")
        or _subprotocol_token(websocket)
    )


def websocket_subprotocol(websocket: HTTPConnection) -> str | None:
    """The subprotocol to accept with: `bigthree.v1` when offered (a client that offered
    any protocol must get one back, and the bearer one must not be echoed), else none."""
    return SUBPROTOCOL if SUBPROTOCOL in _offered_subprotocols(websocket) else None


async def refuse_unauthorized(settings: Settings, websocket: WebSocket) -> bool:
    """Close a WebSocket whose key (header, `?token=` or subprotocol) is missing or wrong;
    True when it was refused."""
    if key_is_valid(settings, websocket_token(websocket)):
        return False
    await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="unauthorized")
    return True
