"""Pure-ASGI middleware: request ids, access logs and protocol headers; unhandled errors
answered without dropping the connection; a request body size limit.

Pure ASGI (not BaseHTTPMiddleware) so streaming bodies and WebSockets pass untouched.
"""

from __future__ import annotations

import json
import logging
import re
import time

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.asgi import scope_header
from app.core.errors import PROTOCOL_HEADER_STATUSES, internal_error, protocol_headers
from app.core.ids import new_id
from app.core.logging import log_context, logs_at

log = structlog.get_logger("bigthree.access")
errors_log = structlog.get_logger(__name__)
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestContextMiddleware:
    """Give every request an id (client's `x-request-id` if sane), bind it to log lines,
    echo it in the response, add the headers its status requires (`protocol_headers`:
    Retry-After on 429/503, WWW-Authenticate on 401), and log one access line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = (scope_header(scope, b"x-request-id") or b"").decode("latin-1")
        request_id = incoming if _SAFE_ID.match(incoming) else new_id()
        scope.setdefault("state", {})["request_id"] = request_id
        status_code = 0
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                headers = list(message.get("headers") or [])
                headers.append((b"x-request-id", request_id.encode()))
                if status_code in PROTOCOL_HEADER_STATUSES:
                    headers += protocol_headers(status_code, (k.lower() for k, _ in headers))
                message["headers"] = headers
            await send(message)

        with log_context(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                if (
                    scope["type"] == "http"
                    and scope["path"] not in ("/health", "/metrics")
                    and logs_at(logging.INFO)
                ):
                    log.info(
                        "request",
                        method=scope["method"],
                        path=scope["path"],
                        status=status_code,
                        duration_ms=round((time.perf_counter() - started) * 1000, 2),
                    )


class UnhandledErrorMiddleware:
    """Answer an exception nothing else handled with the 500 problem, and keep the
    connection.

    Starlette's own last-resort handler re-raises after answering, and uvicorn then closes
    the connection, so a keep-alive client's next request on it failed. Here the error is
    logged once with its traceback and answered; only when the response had already started
    is it re-raised (nothing else can end that response).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            errors_log.error("unhandled_error", error=repr(exc), exc_info=exc)
            if started:
                raise
            response = internal_error((scope.get("state") or {}).get("request_id"))
            await response(scope, receive, send)


class BodyLimitMiddleware:
    """Refuse request bodies over `max_bytes` with 413, by header or by counting."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = scope_header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._reject(scope, send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # an HTTPException, so FastAPI's body parsing re-raises it unchanged and
                    # the error handlers render the usual 413 problem
                    raise HTTPException(413, f"request body exceeds {self.max_bytes} bytes")
            return message

        await self.app(scope, limited_receive, send)

    async def _reject(self, scope: Scope, send: Send) -> None:
        rid = (scope.get("state") or {}).get("request_id")
        error = {
            "type": "payload_too_large",
            "message": f"request body exceeds {self.max_bytes} bytes",
        }
        if rid:
            error["request_id"] = rid
        body = json.dumps({"error": error}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": body})
