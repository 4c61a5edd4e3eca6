"""The request log: every provider request the fake received, credentials redacted."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

REDACTED = "<redacted:present>"
SECRET_HEADERS = frozenset(
    {"authorization", "x-api-key", "x-goog-api-key", "api-key", "cookie", "proxy-authorization"}
)
SECRET_QUERY = frozenset({"key", "api_key"})


class RecordedRequest(BaseModel):
    """One received request; `body` is the parsed JSON, or the raw text if it was not JSON."""

    path: str
    model: str
    headers: dict[str, str]
    query: dict[str, str]
    body: Any
    received_at: float


def redact(values: Mapping[str, str], secret: frozenset[str]) -> dict[str, str]:
    """Lower-case the names and replace secret values with a marker."""
    return {k.lower(): (REDACTED if k.lower() in secret else v) for k, v in values.items()}


class RequestLog:
    """An append-only list of recorded requests, filterable by model and path prefix."""

    def __init__(self) -> None:
        self._items: list[RecordedRequest] = []

    def record(
        self,
        *,
        path: str,
        model: str,
        headers: Mapping[str, str],
        query: Mapping[str, str],
        body: Any,
    ) -> RecordedRequest:
        item = RecordedRequest(
            path=path,
            model=model,
            headers=redact(headers, SECRET_HEADERS),
            query=redact(query, SECRET_QUERY),
            body=body,
            received_at=time.time(),
        )
        self._items.append(item)
        return item

    def select(self, *, model: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        return [
            item
            for item in self._items
            if (model is None or item.model == model)
            and (path is None or item.path.startswith(path))
        ]

    def clear(self) -> None:
        self._items.clear()
