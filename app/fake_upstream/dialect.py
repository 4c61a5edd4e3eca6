"""What each provider protocol (a "dialect") must render, and the SSE framing they share."""

from __future__ import annotations

import json
from typing import Any, Protocol

from app.fake_upstream.reply import Prompt, Reply
from app.fake_upstream.script import ErrorSpec, StreamErrorSpec


class Dialect(Protocol):
    """One vendor's wire format, as pure functions from neutral values to JSON/SSE bytes."""

    name: str
    request_id_header: str
    tool_id_prefix: str

    def request_id(self) -> str: ...

    def read_prompt(self, body: Any) -> Prompt: ...

    def render(self, reply: Reply, model: str) -> dict[str, Any]: ...

    def stream_events(self, reply: Reply, model: str, body: Any) -> list[bytes]: ...

    def error_body(
        self, status: int, error: ErrorSpec | None, retry_delay_s: float | None, request_id: str
    ) -> dict[str, Any]: ...

    def stream_error_event(self, spec: StreamErrorSpec, request_id: str) -> bytes: ...


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def sse(data: Any, event: str | None = None) -> bytes:
    """One SSE event: an optional `event:` line, a `data:` line of compact JSON, a blank line."""
    head = f"event: {event}\n".encode() if event else b""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return head + b"data: " + payload.encode() + b"\n\n"


def text_of(content: Any) -> str:
    """Text of a message content: a string, or the `text` of a list of parts/blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [str(part.get("text", "")) for part in content if isinstance(part, dict)]
        return "".join(texts) if texts else ""
    return "" if content is None else json.dumps(content)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
