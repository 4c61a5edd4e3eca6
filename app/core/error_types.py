"""The one error base for everything the service answers over HTTP: the classes alone.

    AppError (500 internal_error)                  status, type, headers
    ├── BadRequest (400 bad_request)
    ├── Unauthorized (401 unauthorized)            + WWW-Authenticate
    ├── NotFound (404 not_found)
    ├── Conflict (409 conflict)
    ├── PayloadTooLarge (413 payload_too_large)
    ├── InvalidInput (422 validation_error)
    ├── TooManyRequests (429 too_many_requests)    + Retry-After
    └── ServiceUnavailable (503 service_unavailable) + Retry-After
        ├── Draining (503 draining)
        └── StorageUnavailable (503 storage_unavailable: nothing was stored; retry later)

No web framework here: the server maps these to responses (`app.core.errors`, which
re-exports them), and the client (`app.client`) raises the same classes rebuilt from an
error body, without importing FastAPI.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar


class AppError(Exception):
    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "internal_error"
    # the wait to advise when the raiser gives none (else protocol_headers' default applies)
    default_retry_after_s: ClassVar[float | None] = None

    def __init__(self, message: str, *, retry_after_s: float | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = (
            retry_after_s if retry_after_s is not None else self.default_retry_after_s
        )
        self.details = details

    def to_body(self) -> dict[str, Any]:
        return {"error": {"type": self.error_type, "message": self.message, **self.details}}

    def headers(self) -> dict[str, str]:
        """Headers this error's response needs (Retry-After from the hint, if any)."""
        if self.retry_after_s is None:
            return {}
        return {"Retry-After": str(max(1, math.ceil(self.retry_after_s)))}


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
    default_retry_after_s = 2
