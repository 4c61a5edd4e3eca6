"""The service's error tree, mapped once to HTTP problems.

    AppError (500 internal_error)
    ├── BadRequest (400 bad_request)
    ├── Unauthorized (401 unauthorized)
    ├── NotFound (404 not_found)
    ├── Conflict (409 conflict)
    ├── PayloadTooLarge (413 payload_too_large)
    ├── InvalidInput (422 validation_error)
    ├── TooManyRequests (429 too_many_requests)
    └── ServiceUnavailable (503 service_unavailable)
        ├── Draining (503 draining)
        └── StorageUnavailable (503 storage_unavailable: nothing was stored; retry later)

Every response body has the shape `{"error": {"type", "message", ...details}}` and carries
the request id; no handler ever returns a traceback.
"""

from __future__ import annotations

from typing import Any, ClassVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger(__name__)


class AppError(Exception):
    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "internal_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_body(self) -> dict[str, Any]:
        return {"error": {"type": self.error_type, "message": self.message, **self.details}}


class BadRequest(AppError):
    status_code = 400
    error_type = "bad_request"


class Unauthorized(AppError):
    status_code = 401
    error_type = "unauthorized"


class NotFound(AppError):
    status_code = 404
    error_type = "not_found"


class Conflict(AppError):
    status_code = 409
    error_type = "conflict"


class PayloadTooLarge(AppError):
    status_code = 413
    error_type = "payload_too_large"


class InvalidInput(AppError):
    status_code = 422
    error_type = "validation_error"


class TooManyRequests(AppError):
    status_code = 429
    error_type = "too_many_requests"


class ServiceUnavailable(AppError):
    status_code = 503
    error_type = "service_unavailable"


class Draining(ServiceUnavailable):
    error_type = "draining"


class StorageUnavailable(ServiceUnavailable):
    """The store cannot take writes (disk full, read-only, locked): the request's write was
    not made and will not be made later."""

    error_type = "storage_unavailable"
    retry_after_s: ClassVar[int] = 2


_STATUS_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _respond(
    request: Request, status: int, body: dict[str, Any], headers: Any = None
) -> JSONResponse:
    rid = _request_id(request)
    if rid:
        body["error"]["request_id"] = rid
    return JSONResponse(status_code=status, content=body, headers=headers)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    fields = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        fields.append({"loc": loc, "message": err.get("msg", "invalid"), "type": err.get("type")})
    return fields


def install_error_handlers(app: FastAPI) -> None:
    async def on_app_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AppError)
        retry_after = getattr(exc, "retry_after_s", 5)
        headers = {"Retry-After": str(retry_after)} if exc.status_code == 503 else None
        return _respond(request, exc.status_code, exc.to_body(), headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        fields = _field_errors(exc)
        malformed = any(f["type"] == "json_invalid" for f in fields)
        message = "request body is not valid JSON" if malformed else "request is invalid"
        body = {"error": {"type": "validation_error", "message": message, "fields": fields}}
        return _respond(request, 422, body)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        kind = _STATUS_TYPES.get(exc.status_code, "http_error")
        body = {"error": {"type": kind, "message": str(exc.detail)}}
        return _respond(request, exc.status_code, body, getattr(exc, "headers", None))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled_error", error=repr(exc), exc_info=exc)
        body = {"error": {"type": "internal_error", "message": "internal error; see server logs"}}
        return _respond(request, 500, body)

    app.add_exception_handler(AppError, on_app_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
