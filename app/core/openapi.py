"""What the OpenAPI document says about errors: the problem shape and which statuses a
route answers with, so the document lists every status the service really sends.

    @router.post("/things", responses=problems(404, 409, 422))
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_DESCRIPTIONS = {
    400: "Bad request: a body that cannot be decoded, a refused workspace path, ...",
    401: "Missing or invalid bearer key (only when BIGTHREE_API_KEYS is set)",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Request body or file too large",
    422: "Invalid input: `fields` says which",
    429: "Too many requests: retry after `Retry-After` seconds",
    503: "Unavailable (draining, or the store cannot take writes): retry after `Retry-After`",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before retrying",
        "schema": {"type": "integer", "minimum": 1},
    }
}
_WWW_AUTHENTICATE = {
    "WWW-Authenticate": {"description": "the scheme to use", "schema": {"type": "string"}}
}


class ProblemDetail(BaseModel):
    """`type` is stable and machine-readable; other fields depend on it (`fields` for
    validation errors, `hint`, `known`, `reason`, ...)."""

    model_config = ConfigDict(extra="allow")

    type: str
    message: str
    request_id: str | None = Field(None, description="also in the x-request-id header")


class Problem(BaseModel):
    """Every error the service answers with."""

    error: ProblemDetail


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entry documenting these error statuses with the problem shape."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": Problem, "description": _DESCRIPTIONS[status]}
        if status in (429, 503):
            entry["headers"] = _RETRY_AFTER
        if status == 401:
            entry["headers"] = _WWW_AUTHENTICATE
        out[status] = entry
    return out
