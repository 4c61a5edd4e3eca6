"""Anthropic Messages: `POST /v1/messages`, JSON or named SSE events from `message_start`
to `message_stop`. Usage: `input_tokens` excludes cached tokens (`cache_read_input_tokens`).

Claude Code's traffic is served too: it streams, declares its tools, merges consecutive
turns (several `tool_use` blocks in one answer, several `tool_result`s in the next user
message) and wraps context in `<system-reminder>` text, which the default echo leaves out so
that `claude -p "say hello"` is answered `echo: say hello`.
"""

from __future__ import annotations

import re
from typing import Any

from app.fake_upstream.dialect import as_dict, as_list, sse, text_of
from app.fake_upstream.reply import Prompt, Reply, count_words, new_id, pieces, split_in
from app.fake_upstream.script import ErrorSpec, StreamErrorSpec

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low."),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    408: ("timeout_error", "Request timed out."),
    409: ("conflict_error", "Conflicting request."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out."),
    529: ("overloaded_error", "Overloaded"),
}


_REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>\s*", re.DOTALL)


def _content(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"type": "text", "text": value}]
    return [as_dict(block) for block in as_list(value)]


def _block_text(block: dict[str, Any]) -> str:
    if block.get("type") == "text":
        return str(block.get("text", ""))
    if block.get("type") == "tool_result":
        return text_of(block.get("content"))
    return ""


def _finish(reply: Reply) -> str:
    return reply.finish_reason or ("tool_use" if reply.tool_calls else "end_turn")


def _usage(reply: Reply, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": reply.input_tokens - reply.cached_input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": reply.cached_input_tokens,
    }


def _event(name: str, **fields: Any) -> bytes:
    return sse({"type": name, **fields}, event=name)


def _block(index: int, opening: dict[str, Any], deltas: list[dict[str, Any]]) -> list[bytes]:
    """`content_block_start`, its deltas, `content_block_stop`."""
    return [
        _event("content_block_start", index=index, content_block=opening),
        *(_event("content_block_delta", index=index, delta=d) for d in deltas),
        _event("content_block_stop", index=index),
    ]


class AnthropicDialect:
    name = "anthropic"
    request_id_header = "request-id"
    tool_id_prefix = "toolu_"

    def request_id(self) -> str:
        return new_id("req_")

    def read_prompt(self, body: Any) -> Prompt:
        data = as_dict(body)
        messages = [as_dict(m) for m in as_list(data.get("messages"))]
        blocks = [_content(m.get("content")) for m in messages]
        users = [b for m, b in zip(messages, blocks, strict=True) if m.get("role") == "user"]
        results = [b for b in blocks[-1] if b.get("type") == "tool_result"] if blocks else []
        words = [text_of(data.get("system"))] + [_block_text(b) for bl in blocks for b in bl]
        last_user = [b for b in users[-1] if b.get("type") == "text"] if users else []
        return Prompt(
            last_user_text=_REMINDER.sub("", "".join(_block_text(b) for b in last_user)),
            tool_result="\n".join(_block_text(b) for b in results) if results else None,
            input_words=count_words(words),
        )

    def _blocks(self, reply: Reply) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if reply.text or not reply.tool_calls:
            blocks.append({"type": "text", "text": reply.text})
        blocks += [
            {"type": "tool_use", "id": call.id, "name": call.name, "input": call.parsed}
            for call in reply.tool_calls
        ]
        return blocks

    def _message(
        self,
        reply: Reply,
        model: str,
        content: list[dict[str, Any]],
        stop_reason: str | None,
        output_tokens: int,
    ) -> dict[str, Any]:
        return {
            "id": new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": _usage(reply, output_tokens),
        }

    def render(self, reply: Reply, model: str) -> dict[str, Any]:
        return self._message(reply, model, self._blocks(reply), _finish(reply), reply.output_tokens)

    def stream_events(self, reply: Reply, model: str, body: Any) -> list[bytes]:
        start = self._message(reply, model, [], None, min(1, reply.output_tokens))
        events = [_event("message_start", message=start), _event("ping")]
        index = 0
        if reply.text or not reply.tool_calls:
            deltas = [{"type": "text_delta", "text": p} for p in pieces(reply.text)]
            events += _block(index, {"type": "text", "text": ""}, deltas)
            index += 1
        for call in reply.tool_calls:
            opening = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
            parts = ["", *(p for p in split_in(call.arguments, 3) if p)]
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in parts]
            events += _block(index, opening, deltas)
            index += 1
        delta = {"stop_reason": _finish(reply), "stop_sequence": None}
        usage = _usage(reply, reply.output_tokens)
        events.append(_event("message_delta", delta=delta, usage=usage))
        events.append(_event("message_stop"))
        return events

    def error_body(
        self, status: int, error: ErrorSpec | None, retry_delay_s: float | None, request_id: str
    ) -> dict[str, Any]:
        default = _ERRORS[500] if status >= 500 else _ERRORS[400]
        kind, message = _ERRORS.get(status, default)
        spec = error or ErrorSpec()
        return {
            "type": "error",
            "error": {"type": spec.type or kind, "message": spec.message or message},
            "request_id": request_id,
        }

    def stream_error_event(self, spec: StreamErrorSpec, request_id: str) -> bytes:
        kind, message = _ERRORS[529]
        error = {"type": spec.type or kind, "message": spec.message or message}
        return sse({"type": "error", "error": error, "request_id": request_id}, event="error")
