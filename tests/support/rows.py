"""Typed store rows for tests that drive a write backend or the writer directly."""

from __future__ import annotations

import orjson

from app.store.rows import NewEvent


def event(type_: str = "t", **payload: object) -> NewEvent:
    """An event row as the writer receives it: `payload` and its JSON text, no agent or task."""
    return NewEvent(
        1.0, "test", type_, None, None, None, dict(payload), orjson.dumps(payload).decode()
    )
