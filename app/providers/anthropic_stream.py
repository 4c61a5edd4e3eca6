"""Anthropic Messages streaming: SSE events folded into text deltas and one final Completion.

Event order (per the Messages streaming docs): `message_start`, then per content block
`content_block_start` → `content_block_delta`* → `content_block_stop`, then `message_delta`
(stop_reason and cumulative usage) and `message_stop`. `ping` may come anywhere; unknown
events and delta types are ignored. An `error` event can arrive after HTTP 200: it is raised
as the error its type maps to (e.g. `overloaded_error` → Overloaded, status 529).
Tool input arrives as `input_json_delta.partial_json` fragments, joined per block `index`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from app.providers import errors as pe
from app.providers.anthropic_wire import (
    error_from_body,
    error_from_response,
    finish_reason,
    parse_usage,
    tool_call,
)
from app.providers.base import Completion, StreamDone, StreamEvent, TextDelta, ToolCall, Usage
from app.providers.http import HttpStream, iter_sse, parse_json


@dataclass(slots=True)
class _Block:
    kind: str
    call_id: str = ""
    name: str = ""
    json_parts: list[str] = field(default_factory=list)
    initial_input: Any = None


@dataclass(slots=True)
class MessageStream:
    """Folds decoded stream events; `feed` returns the text to emit, `completion` the result."""

    provider: str
    model: str
    request_id: str | None = None
    usage: Usage = field(default_factory=Usage)
    stop_reason: str | None = None
    finished: bool = False
    _text: list[str] = field(default_factory=list)
    _blocks: dict[int, _Block] = field(default_factory=dict)

    def feed(self, event: dict[str, Any]) -> str | None:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self.model = str(message.get("model") or self.model)
            self.usage = parse_usage(message.get("usage"), self.usage)
        elif kind == "content_block_start":
            block = event.get("content_block") or {}
            self._blocks[int(event.get("index", 0))] = _Block(
                kind=str(block.get("type") or ""),
                call_id=str(block.get("id") or ""),
                name=str(block.get("name") or ""),
                initial_input=block.get("input"),
            )
            if block.get("type") == "text" and block.get("text"):
                return self._emit(str(block["text"]))
        elif kind == "content_block_delta":
            return self._delta(int(event.get("index", 0)), event.get("delta") or {})
        elif kind == "message_delta":
            delta = event.get("delta") or {}
            self.stop_reason = delta.get("stop_reason") or self.stop_reason
            self.usage = parse_usage(event.get("usage"), self.usage)
        elif kind == "message_stop":
            self.finished = True
        elif kind == "error":
            error = error_from_body(self.provider, None, event)
            error.request_id = error.request_id or self.request_id
            raise error
        return None  # ping, content_block_stop and unknown events change nothing

    def _delta(self, index: int, delta: dict[str, Any]) -> str | None:
        block = self._blocks.setdefault(index, _Block(kind=""))
        if delta.get("type") == "text_delta":
            return self._emit(str(delta.get("text") or ""))
        if delta.get("type") == "input_json_delta":
            block.json_parts.append(str(delta.get("partial_json") or ""))
        return None

    def _emit(self, text: str) -> str | None:
        if not text:
            return None
        self._text.append(text)
        return text

    def tool_calls(self) -> tuple[ToolCall, ...]:
        calls = []
        for _, block in sorted(self._blocks.items()):
            if block.kind != "tool_use":
                continue
            if block.json_parts:
                calls.append(tool_call(block.call_id, block.name, None, "".join(block.json_parts)))
            else:
                calls.append(tool_call(block.call_id, block.name, block.initial_input or {}))
        return tuple(calls)

    def completion(self) -> Completion:
        calls = self.tool_calls()
        return Completion(
            text="".join(self._text),
            tool_calls=calls,
            finish_reason=finish_reason(self.stop_reason, bool(calls)),
            usage=self.usage,
            model=self.model,
            request_id=self.request_id,
            raw_finish_reason=self.stop_reason,
        )


async def stream_messages(
    provider: str, response: HttpStream, model: str
) -> AsyncIterator[StreamEvent]:
    """Read one streaming response to the end: TextDelta per text piece, then StreamDone."""
    request_id = response.headers.get("request-id")
    if response.status_code >= 400:
        raw = (await response.aread()).decode(errors="replace")
        raise error_from_response(provider, response.status_code, response.headers, raw)
    state = MessageStream(provider, model, request_id)
    async for event_name, data in iter_sse(response):
        event = parse_json(provider, data, request_id)
        if not isinstance(event, dict):
            raise pe.MalformedResponse(
                f"{provider}: stream event is not an object",
                provider=provider,
                request_id=request_id,
            )
        event.setdefault("type", event_name)
        text = state.feed(event)
        if text:
            yield TextDelta(text)
        if state.finished:
            break
    if not state.finished:
        raise pe.MalformedResponse(
            f"{provider}: stream ended before message_stop",
            provider=provider,
            request_id=request_id,
        )
    yield StreamDone(state.completion())
