"""Anthropic Messages API: `POST {base}/v1/messages`.

`base_url` follows the Anthropic SDK convention and has no `/v1` (`https://api.anthropic.com`).

Mapping from the common shapes:
  - role="system" messages → the top-level `system` string (joined by blank lines);
  - assistant tool calls → `tool_use` blocks; role="tool" messages → `tool_result` blocks in a
    user message (consecutive results, and a user message right after them, share one turn);
  - usage: Anthropic's `input_tokens` excludes cache reads and writes, so `Usage.input_tokens`
    adds both back (the total prompt, as OpenAI and Gemini count it) and
    `Usage.cached_input_tokens` is `cache_read_input_tokens`.
The HTTP client is `app.providers.anthropic`; the SSE stream is `app.providers.anthropic_stream`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from app.providers import errors as pe
from app.providers.base import (
    Completion,
    CompletionRequest,
    FinishReason,
    Message,
    ToolCall,
    Usage,
)
from app.providers.http import json_or_none

MESSAGES_PATH = "/v1/messages"

FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

_TOOL_CHOICE = {"auto": "auto", "none": "none", "required": "any"}

# error.type → (error class, the HTTP status Anthropic documents for it)
_ERROR_TYPES: dict[str, tuple[type[pe.ProviderError], int]] = {
    "invalid_request_error": (pe.InvalidRequest, 400),
    "authentication_error": (pe.AuthenticationFailed, 401),
    "billing_error": (pe.QuotaExhausted, 402),
    "permission_error": (pe.PermissionDenied, 403),
    "not_found_error": (pe.ModelNotFound, 404),
    "conflict_error": (pe.RequestConflict, 409),
    "request_too_large": (pe.InvalidRequest, 413),
    "rate_limit_error": (pe.RateLimited, 429),
    "api_error": (pe.ServerError, 500),
    "timeout_error": (pe.ProviderTimeout, 504),
    "overloaded_error": (pe.Overloaded, 529),
}

# An invalid_request_error that is really about money: no retry will fix it.
_QUOTA_PHRASES = ("credit balance", "spend limit", "usage limit", "billing")


def finish_reason(raw: str | None, has_calls: bool) -> FinishReason:
    return FINISH.get(raw or "", "tool_calls" if has_calls else "other")


def _text_blocks(text: str | None) -> list[dict[str, Any]]:
    # Anthropic rejects empty text blocks, so an empty string sends nothing.
    return [{"type": "text", "text": text}] if text else []


def _blocks(message: Message) -> tuple[str, list[dict[str, Any]]]:
    if message.role == "tool":
        block: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": message.tool_call_id,
            "content": message.content or "",
        }
        if message.is_error:
            block["is_error"] = True
        return "user", [block]
    if message.role == "assistant":
        blocks = _text_blocks(message.content)
        blocks += [
            {"type": "tool_use", "id": c.id, "name": c.name, "input": dict(c.arguments)}
            for c in message.tool_calls
        ]
        return "assistant", blocks
    return "user", _text_blocks(message.content)


def request_json(
    request: CompletionRequest, *, default_max_tokens: int, stream: bool
) -> dict[str, Any]:
    system = [m.content for m in request.messages if m.role == "system" and m.content]
    turns: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role == "system":
            continue
        role, blocks = _blocks(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)  # roles must alternate: merge into one turn
        else:
            turns.append({"role": role, "content": blocks})
    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_output_tokens or default_max_tokens,
        "messages": turns,
    }
    if system:
        body["system"] = "\n\n".join(system)
    if request.tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": dict(t.parameters)}
            for t in request.tools
        ]
        if request.tool_choice:
            body["tool_choice"] = {"type": _TOOL_CHOICE[request.tool_choice]}
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if stream:
        body["stream"] = True
    return body


def tool_call(call_id: str, name: str, arguments: Any, raw: str | None = None) -> ToolCall:
    """A ToolCall from a tool_use block's `input` (an object) or streamed JSON text (`raw`)."""
    if raw is not None:
        try:
            arguments = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            return ToolCall(call_id, name, {}, raw, arguments_error=f"input is not JSON: {exc}")
    if not isinstance(arguments, dict):
        text = raw if raw is not None else json.dumps(arguments)
        return ToolCall(call_id, name, {}, text, arguments_error="input is not a JSON object")
    return ToolCall(call_id, name, arguments, raw if raw is not None else json.dumps(arguments))


def parse_usage(data: Any, base: Usage | None = None) -> Usage:
    """Usage from a `usage` object; fields it lacks keep their value from `base`."""
    if not isinstance(data, dict):
        return base or Usage()
    prior = base or Usage()
    fields = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    if any(data.get(k) is not None for k in fields):
        cache_read = int(data.get("cache_read_input_tokens") or 0)
        cache_write = int(data.get("cache_creation_input_tokens") or 0)
        input_tokens = int(data.get("input_tokens") or 0) + cache_read + cache_write
    else:
        input_tokens, cache_read = prior.input_tokens, prior.cached_input_tokens
    output = data.get("output_tokens")
    return Usage(
        input_tokens=input_tokens,
        output_tokens=prior.output_tokens if output is None else int(output),
        cached_input_tokens=cache_read,
    )


def parse_completion(data: Any, request_id: str | None, provider: str) -> Completion:
    try:
        text: list[str] = []
        calls: list[ToolCall] = []
        for block in data["content"]:
            if block.get("type") == "text":
                text.append(str(block.get("text") or ""))
            elif block.get("type") == "tool_use":
                calls.append(tool_call(block["id"], block["name"], block.get("input", {})))
        raw_finish = data.get("stop_reason")
    except (KeyError, TypeError, AttributeError) as exc:
        raise pe.unexpected_shape(provider, exc, request_id) from exc
    return Completion(
        text="".join(text),
        tool_calls=tuple(calls),
        finish_reason=finish_reason(raw_finish, bool(calls)),
        usage=parse_usage(data.get("usage")),
        model=str(data.get("model") or ""),
        request_id=request_id,
        raw_finish_reason=raw_finish,
    )


def error_from_body(
    provider: str,
    status: int | None,
    body: Any,
    *,
    headers: Mapping[str, str] | None = None,
    fallback_text: str = "",
) -> pe.ProviderError:
    """Map `{"type":"error","error":{"type","message"},"request_id"}` (HTTP or SSE) to our tree.

    With `status=None` (an `error` event after HTTP 200) the status is the one Anthropic
    documents for the error type, so an `overloaded_error` mid-stream reads as a 529.
    """
    err = body.get("error") if isinstance(body, Mapping) else None
    err = err if isinstance(err, Mapping) else {}
    kind = str(err.get("type") or "")
    message = str(err.get("message") or fallback_text[:500] or kind or "unknown error")
    known = _ERROR_TYPES.get(kind)
    if status is None:
        status = known[1] if known else 500
    cls = known[0] if known else pe.error_for_status(status)
    if cls is pe.InvalidRequest and any(p in message.lower() for p in _QUOTA_PHRASES):
        cls = pe.QuotaExhausted
    request_id = headers.get("request-id") if headers is not None else None
    if not request_id and isinstance(body, Mapping) and body.get("request_id"):
        request_id = str(body["request_id"])
    retryable: bool | None = None
    should = headers.get("x-should-retry") if headers is not None else None
    if should in {"true", "false"} and cls is not pe.QuotaExhausted:
        retryable = should == "true"
    label = f" {kind}" if kind else ""
    return cls(
        f"{provider} HTTP {status}{label}: {message}",
        provider=provider,
        status=status,
        request_id=request_id,
        retry_after_s=pe.parse_retry_after(headers) if headers is not None else None,
        retryable=retryable,
    )


def error_from_response(
    provider: str, status: int, headers: Mapping[str, str], text: str
) -> pe.ProviderError:
    body = json_or_none(text)
    return error_from_body(provider, status, body, headers=headers, fallback_text=text)
