"""Pure-ASGI middleware: request ids, access logs, metrics and protocol headers; unhandled
errors answered without dropping the connection; a request body size limit.

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
from app.core.http_metrics import PROBE_PATHS, HttpSeries
from app.core.ids import new_request_id
from app.core.logging import log_context, logs_at

log = structlog.get_logger("bigthree.access")
errors_log = structlog.get_logger(__name__)
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestEnvelope:
    """What every request gets, in one pure-ASGI layer: an id (the client's `x-request-id`
    if sane) bound to its log lines and echoed in the response; the headers its status
    requires (`protocol_headers`: Retry-After on 429/503, WWW-Authenticate on 401); an
    exception nothing else handled logged once with its traceback and answered with the 500
    problem; for HTTP, its metrics (`HttpSeries`) and one access line, the probes excepted.

    The 500 keeps the connection: uvicorn closes it when an exception leaves the app, so a
    keep-alive client's next request on it would fail. The exception is re-raised only when
    its response had started and not ended (nothing else can end that response). FastAPI's
    own last-resort layer answers with the same problem (`install_error_handlers`) and
    re-raises: that response has ended, so the exception stops here.

    One layer, not one per job: each layer is a coroutine call and a send wrapper on every
    request, and at the socket the three this replaced cost more than the task read they
    wrapped (bench/README.md, run 18)."""

    def __init__(self, app: ASGIApp, metrics: HttpSeries) -> None:
        self.app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        incoming = (scope_header(scope, b"x-request-id") or b"").decode("latin-1")
        request_id = incoming if _SAFE_ID.match(incoming) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        if kind == "websocket":
            with log_context(request_id=request_id):
                await self.app(scope, receive, send)
            return
        status = 0  # until the response starts
        ended = False
        started = time.perf_counter()

        async def answer(message: Message) -> None:
            nonlocal status, ended
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*(message.get("headers") or ()), (b"x-request-id", request_id.encode())]
                if status in PROTOCOL_HEADER_STATUSES:
                    headers += protocol_headers(status, (k.lower() for k, _ in headers))
                message["headers"] = headers
            elif not message.get("more_body", False):
                ended = True
            await send(message)

        with log_context(request_id=request_id):
            try:
                await self.app(scope, receive, answer)
            except Exception as exc:
                errors_log.error("unhandled_error", error=repr(exc), exc_info=exc)
                if status and not ended:
                    raise
                if not status:
                    await internal_error(request_id)(scope, receive, answer)
            finally:
                if scope["path"] not in PROBE_PATHS:
                    elapsed_s = time.perf_counter() - started
                    self._metrics.record(scope, status or 500, elapsed_s)
                    if logs_at(logging.INFO):
                        log.info(
                            "request",
                            method=scope["method"],
                            path=scope["path"],
                            status=status,
                            duration_ms=round(elapsed_s * 1000, 2),
                        )


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
