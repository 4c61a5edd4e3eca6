"""The server's error body turned back into the server's own exception types."""

from __future__ import annotations

from typing import Any

import httpx

from app.core.error_types import AppError


class Unreachable(AppError):
    """The client could not talk to the server at all (refused, timed out, DNS, ...)."""

    error_type = "unreachable"


def _by_type() -> dict[str, type[AppError]]:
    """Every AppError subclass by its `error_type` (subclasses override their parents)."""
    found: dict[str, type[AppError]] = {}
    pending: list[type[AppError]] = [AppError]
    while pending:
        cls = pending.pop(0)
        found[cls.error_type] = cls
        pending.extend(cls.__subclasses__())
    return found


def _by_status() -> dict[int, type[AppError]]:
    found: dict[int, type[AppError]] = {}
    for cls in _by_type().values():
        found.setdefault(cls.status_code, cls)
    return found


def error_from_response(response: httpx.Response) -> AppError:
    """The AppError a non-2xx response stands for; `details` keep the body's other fields
    (`request_id`, `fields`, ...) plus `status` and, when sent, `retry_after`."""
    try:
        body = response.json()
        error: dict[str, Any] = dict(body["error"])
    except (ValueError, KeyError, TypeError):
        error = {"message": response.text[:500] or response.reason_phrase}
    kind = str(error.pop("type", ""))
    message = str(error.pop("message", "") or f"HTTP {response.status_code}")
    cls = _by_type().get(kind) or _by_status().get(response.status_code, AppError)
    details: dict[str, Any] = {**error, "status": response.status_code}
    if kind and kind != cls.error_type:
        details["server_type"] = kind
    retry_after = response.headers.get("retry-after")
    if retry_after is not None:
        details["retry_after"] = retry_after
    return cls(message, **details)
