"""Small pieces every layer that speaks raw ASGI shares: a request header without a
headers object, and a JSON response from text already encoded."""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import Scope

JSON = "application/json"


def scope_header(scope: Scope, name: bytes) -> bytes | None:
    """One request header's value (None when absent), without building a dict of them."""
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value)
    return None


def json_response(content: str | bytes, status_code: int = 200) -> Response:
    """`content` (JSON text already encoded: a stored event, a task's cached JSON) as is."""
    return Response(content, status_code=status_code, media_type=JSON)
