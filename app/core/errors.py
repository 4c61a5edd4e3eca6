"""The service's errors over HTTP, mapped in one place: the error tree (the classes live in
`app.core.error_types`, free of FastAPI so the client shares them; they are re-exported here
and the server imports every error name from this module) turned into responses.

The other error trees never reach HTTP as themselves: `ProviderError` (app.providers.errors)
becomes a task's typed `error`; `ResilienceError` (app.resilience.errors) knows no HTTP and
carries at most a wait hint (`retry_after_s`, `retry_in_s`) that a caller passes on as
`AppError(retry_after_s=...)`; `ToolError` (app.tools.errors) becomes a tool result, or an
AppError at the files API.

Rules every response obeys, enforced by `protocol_headers()` on each response the service
sends (RequestEnvelope calls it): a 429 or 503 carries `Retry-After`, a 401
carries `WWW-Authenticate`. Bodies have the shape `{"error": {"type", "message", ...}}`,
carry the request id and pass through the redactor; no handler ever returns a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.core.error_types import AppError as AppError
from app.core.error_types import BadRequest as BadRequest
from app.core.error_types import Conflict as Conflict
from app.core.error_types import Draining as Draining
from app.core.error_types import InvalidInput as InvalidInput
from app.core.error_types import NotFound as NotFound
from app.core.error_types import PayloadTooLarge as PayloadTooLarge
from app.core.error_types import ServiceUnavailable as ServiceUnavailable
from app.core.error_types import StorageUnavailable as StorageUnavailable
from app.core.error_types import TooManyRequests as TooManyRequests
from app.core.error_types import Unauthorized as Unauthorized
from app.core.redaction import redact_value

WWW_AUTHENTICATE = 'Bearer realm="bigthree"'
# when nothing better is known: a full queue drains within a second or so; a service that is
# unavailable (draining, store trouble) needs longer
DEFAULT_RETRY_AFTER_S = {429: 1, 503: 5}


_STATUS_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    503: "service_unavailable",
}


# the statuses `protocol_headers` adds to (any other needs nothing looked at)
PROTOCOL_HEADER_STATUSES = frozenset({401, *DEFAULT_RETRY_AFTER_S})


def protocol_headers(status: int, present: Iterable[bytes]) -> list[tuple[bytes, bytes]]:
    """Headers a response with `status` must carry but lacks (`present`: lower-case names)."""
    names = set(present)
    missing: list[tuple[bytes, bytes]] = []
    if status in DEFAULT_RETRY_AFTER_S and b"retry-after" not in names:
        missing.append((b"retry-after", str(DEFAULT_RETRY_AFTER_S[status]).encode()))
    if status == 401 and b"www-authenticate" not in names:
        missing.append((b"www-authenticate", WWW_AUTHENTICATE.encode()))
    return missing


def problem(
    request_id: str | None,
    status: int,
    error_type: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    **details: Any,
) -> JSONResponse:
    """The service's error response: `{"error": {...}}`, redacted, with the request id."""
    error: dict[str, Any] = {"type": error_type, "message": message, **details}
    if request_id:
        error["request_id"] = request_id
    return JSONResponse(status_code=status, content=redact_value({"error": error}), headers=headers)


def app_error_response(request_id: str | None, exc: AppError) -> JSONResponse:
    """The response for an AppError (FastAPI's handler and the fast lane both answer so)."""
    body = exc.to_body()["error"]
    error_type, message = body.pop("type"), body.pop("message")
    return problem(request_id, exc.status_code, error_type, message, headers=exc.headers(), **body)


def internal_error(request_id: str | None) -> JSONResponse:
    return problem(request_id, 500, "internal_error", "internal error; see server logs")


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (the router's own 405 names only the
    first route that matched the path). Asked of the routes themselves, method by method."""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    fields = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        fields.append({"loc": loc, "message": err.get("msg", "invalid"), "type": err.get("type")})
    return fields


def install_error_handlers(app: FastAPI) -> None:
    """Map AppError, validation errors and Starlette's HTTP errors to problems; anything
    else to the 500 problem, which FastAPI's last-resort layer sends before re-raising for
    `RequestEnvelope` to log (and to keep the connection)."""

    async def on_unhandled(request: Request, exc: Exception) -> Response:
        return internal_error(_request_id(request))

    async def on_app_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AppError)
        return app_error_response(_request_id(request), exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        fields = _field_errors(exc)
        malformed = any(f["type"] == "json_invalid" for f in fields)
        message = "request body is not valid JSON" if malformed else "request is invalid"
        return problem(_request_id(request), 422, "validation_error", message, fields=fields)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
            # FastAPI's "error parsing the body": not UTF-8, or nested past what the parser
            # follows — a body that is not JSON this service can take, like json_invalid
            why = "nested too deep" if isinstance(exc.__cause__, RecursionError) else "not UTF-8"
            return problem(
                _request_id(request),
                422,
                "validation_error",
                f"request body is not valid JSON ({why})",
                fields=[{"loc": ["body"], "message": why, "type": "json_invalid"}],
            )
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            allow = ", ".join([*allowed_methods(request), "OPTIONS"])
            if request.method == "OPTIONS":
                # OPTIONS on a known path: say what it serves (CORS preflights never get here)
                return Response(status_code=204, headers={"Allow": allow})
            headers["Allow"] = allow
        kind = _STATUS_TYPES.get(exc.status_code, "http_error")
        return problem(
            _request_id(request), exc.status_code, kind, str(exc.detail), headers=headers
        )

    app.add_exception_handler(AppError, on_app_error)
    app.add_exception_handler(Exception, on_unhandled)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
