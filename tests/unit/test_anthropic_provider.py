"""AnthropicProvider against httpx.MockTransport: exact requests, parsing, streaming, errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from app.providers import errors as pe
from app.providers.anthropic import AnthropicProvider
from app.providers.base import (
    Completion,
    CompletionRequest,
    Message,
    StreamDone,
    TextDelta,
    ToolCall,
)
from tests.support.mock_http import WEATHER, Handler, Recorder, mock_client

BASE = "https://api.anthropic.com"


def provider(handler: Handler, api_key: str | None = "sk-ant-test") -> AnthropicProvider:
    return AnthropicProvider(mock_client(handler, BASE), api_key=api_key)


def message_json(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "Hello"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }
    body.update(overrides)
    return body


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def stream_response(body: bytes, status: int = 200) -> httpx.Response:
    return httpx.Response(
        status,
        content=body,
        headers={"content-type": "text/event-stream", "request-id": "req_stream"},
    )


def error_response(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(
        status,
        json={"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_b"},
        headers=headers or {},
    )


async def complete(p: AnthropicProvider, request: CompletionRequest | None = None) -> Completion:
    return await p.complete(request or simple_request(), timeout_s=5)


async def collect(p: AnthropicProvider, request: CompletionRequest | None = None) -> list[Any]:
    return [event async for event in p.stream(request or simple_request(), timeout_s=5)]


def simple_request(**kw: Any) -> CompletionRequest:
    return CompletionRequest(model="claude-sonnet-4-5", messages=[Message("user", "Hi")], **kw)


# --- requests -----------------------------------------------------------------------------


async def test_tool_round_trip_request_json_is_exact() -> None:
    """System → top-level `system`, calls → tool_use, results merged into one user turn."""
    rec = Recorder(httpx.Response(200, json=message_json()))
    calls = (
        ToolCall("toolu_1", "get_weather", {"city": "Paris"}),
        ToolCall("toolu_2", "get_weather", {"city": "Oslo"}),
    )
    request = CompletionRequest(
        model="claude-sonnet-4-5",
        messages=[
            Message("system", "Be brief."),
            Message("system", "Use tools."),
            Message("user", "Weather in Paris and Oslo?"),
            Message("assistant", "Checking.", tool_calls=calls),
            Message("tool", "18C", tool_call_id="toolu_1", tool_name="get_weather"),
            Message("tool", "city unknown", tool_call_id="toolu_2", is_error=True),
            Message("user", "Thanks"),
        ],
        tools=[WEATHER],
        tool_choice="required",
        max_output_tokens=256,
        temperature=0.2,
    )
    await complete(provider(rec), request)
    sent = rec.requests[0]
    assert sent.method == "POST"
    assert str(sent.url) == f"{BASE}/v1/messages"
    assert sent.headers["x-api-key"] == "sk-ant-test"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert rec.body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "system": "Be brief.\n\nUse tools.",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Oslo?"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                    {
                        "type": "tool_use",
                        "id": "toolu_2",
                        "name": "get_weather",
                        "input": {"city": "Oslo"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_2",
                        "content": "city unknown",
                        "is_error": True,
                    },
                    {"type": "text", "text": "Thanks"},
                ],
            },
        ],
        "tools": [
            {
                "name": "get_weather",
                "description": "Weather for a city",
                "input_schema": dict(WEATHER.parameters),
            }
        ],
        "tool_choice": {"type": "any"},
        "temperature": 0.2,
    }


@pytest.mark.parametrize(
    ("choice", "wire"), [("auto", "auto"), ("none", "none"), ("required", "any")]
)
async def test_tool_choice_maps_to_anthropic_types(choice: Any, wire: str) -> None:
    """tool_choice auto/none/required → {"type": auto|none|any}."""
    rec = Recorder(httpx.Response(200, json=message_json()))
    await complete(provider(rec), simple_request(tools=[WEATHER], tool_choice=choice))
    assert rec.body["tool_choice"] == {"type": wire}


async def test_defaults_max_tokens_and_omits_optional_fields() -> None:
    """Without max_output_tokens the constructor default is sent; no system/tools/stream keys."""
    rec = Recorder(httpx.Response(200, json=message_json()))
    await complete(provider(rec))
    assert rec.body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
    }


async def test_no_api_key_sends_no_key_header() -> None:
    """A provider built without a key (custom base URL) sends no x-api-key."""
    rec = Recorder(httpx.Response(200, json=message_json()))
    await complete(provider(rec, api_key=None))
    assert "x-api-key" not in rec.requests[0].headers


# --- responses ----------------------------------------------------------------------------


async def test_parses_text_tool_use_usage_and_request_id() -> None:
    """Text blocks are joined, tool_use becomes ToolCall, cache tokens are counted as input."""
    body = message_json(
        content=[
            {"type": "text", "text": "Let me "},
            {"type": "text", "text": "check."},
            {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Rome"}},
        ],
        stop_reason="tool_use",
        usage={
            "input_tokens": 10,
            "output_tokens": 7,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 20,
        },
    )
    rec = Recorder(httpx.Response(200, json=body, headers={"request-id": "req_123"}))
    result = await complete(provider(rec))
    assert result.text == "Let me check."
    assert result.tool_calls == (
        ToolCall("toolu_9", "get_weather", {"city": "Rome"}, '{"city": "Rome"}'),
    )
    assert result.finish_reason == "tool_calls"
    assert result.raw_finish_reason == "tool_use"
    assert result.usage.input_tokens == 130
    assert result.usage.cached_input_tokens == 100
    assert result.usage.output_tokens == 7
    assert result.request_id == "req_123"
    assert result.model == "claude-sonnet-4-5"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "other"),
        ("something_new", "other"),
    ],
)
async def test_stop_reason_mapping(raw: str, expected: str) -> None:
    """Anthropic stop_reason values map onto the common finish reasons."""
    rec = Recorder(httpx.Response(200, json=message_json(stop_reason=raw)))
    assert (await complete(provider(rec))).finish_reason == expected


async def test_malformed_json_is_malformed_response() -> None:
    """A 200 whose body is not JSON raises MalformedResponse (retryable)."""
    rec = Recorder(httpx.Response(200, text="<html>oops", headers={"request-id": "req_x"}))
    with pytest.raises(pe.MalformedResponse) as info:
        await complete(provider(rec))
    assert info.value.retryable and info.value.request_id == "req_x"


async def test_wrong_shape_is_malformed_response() -> None:
    """Valid JSON without `content` blocks raises MalformedResponse."""
    rec = Recorder(httpx.Response(200, json={"type": "message"}))
    with pytest.raises(pe.MalformedResponse):
        await complete(provider(rec))


# --- streaming ----------------------------------------------------------------------------

STREAM_EVENTS: list[dict[str, Any]] = [
    {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "model": "claude-sonnet-4-5",
            "content": [],
            "usage": {"input_tokens": 25, "cache_read_input_tokens": 5, "output_tokens": 1},
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}},
    {"type": "content_block_stop", "index": 0},
    {
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {}},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": ""},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": '{"ci'},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": 'ty": "Par'},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": 'is"}'},
    },
    {"type": "content_block_stop", "index": 1},
    {"type": "brand_new_event", "whatever": True},
    {
        "type": "content_block_start",
        "index": 2,
        "content_block": {"type": "tool_use", "id": "toolu_b", "name": "now", "input": {}},
    },
    {"type": "content_block_stop", "index": 2},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 42},
    },
    {"type": "message_stop"},
]


async def test_stream_reassembles_text_and_partial_json_per_block() -> None:
    """Text deltas stream out; partial_json fragments join per index; usage is cumulative."""
    rec = Recorder(stream_response(sse(*STREAM_EVENTS)))
    events = await collect(provider(rec), simple_request(tools=[WEATHER]))
    assert rec.body["stream"] is True
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo"]
    done = events[-1]
    assert isinstance(done, StreamDone)
    result = done.completion
    assert result.text == "Hello"
    assert [(c.id, c.name, dict(c.arguments)) for c in result.tool_calls] == [
        ("toolu_a", "get_weather", {"city": "Paris"}),
        ("toolu_b", "now", {}),
    ]
    assert result.finish_reason == "tool_calls"
    assert (result.usage.input_tokens, result.usage.cached_input_tokens) == (30, 5)
    assert result.usage.output_tokens == 42
    assert result.request_id == "req_stream"


async def test_stream_invalid_tool_json_sets_arguments_error() -> None:
    """Fragments that never form JSON give a ToolCall with arguments_error, not a crash."""
    events = [
        STREAM_EVENTS[0],
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "toolu_x", "name": "f", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"a": '},
        },
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {}},
        {"type": "message_stop"},
    ]
    out = await collect(provider(Recorder(stream_response(sse(*events)))))
    call = out[-1].completion.tool_calls[0]
    assert call.arguments == {} and call.raw_arguments == '{"a": '
    assert call.arguments_error is not None


async def test_stream_error_event_after_200_raises_mapped_error() -> None:
    """An `error` event mid-stream raises the mapped class with the type's status (529)."""
    events = [
        STREAM_EVENTS[0],
        STREAM_EVENTS[1],
        STREAM_EVENTS[3],
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    ]
    seen: list[Any] = []
    with pytest.raises(pe.Overloaded) as info:
        async for event in provider(Recorder(stream_response(sse(*events)))).stream(
            simple_request(), timeout_s=5
        ):
            seen.append(event)
    assert seen == [TextDelta("Hel")]
    assert info.value.status == 529 and info.value.retryable
    assert info.value.request_id == "req_stream"


async def test_stream_http_error_status_is_mapped() -> None:
    """A streaming request refused with HTTP 529 raises Overloaded before any event."""
    rec = Recorder(error_response(529, "overloaded_error", "Overloaded"))
    with pytest.raises(pe.Overloaded):
        await collect(provider(rec))


async def test_stream_malformed_data_is_malformed_response() -> None:
    """A data line that is not JSON raises MalformedResponse."""
    body = sse(STREAM_EVENTS[0]) + b"event: content_block_delta\ndata: {not json\n\n"
    with pytest.raises(pe.MalformedResponse):
        await collect(provider(Recorder(stream_response(body))))


async def test_stream_cut_before_message_stop_is_malformed_response() -> None:
    """A stream that ends without message_stop is incomplete: MalformedResponse."""
    body = sse(*STREAM_EVENTS[:5])
    with pytest.raises(pe.MalformedResponse, match="message_stop"):
        await collect(provider(Recorder(stream_response(body))))


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "message", "cls"),
    [
        (400, "invalid_request_error", "messages: field required", pe.InvalidRequest),
        (
            400,
            "invalid_request_error",
            "Your credit balance is too low to access the Anthropic API. Please go to Plans & "
            "Billing to upgrade or purchase credits.",
            pe.QuotaExhausted,
        ),
        (
            400,
            "invalid_request_error",
            "You have reached your specified workspace API usage limits.",
            pe.QuotaExhausted,
        ),
        (401, "authentication_error", "invalid x-api-key", pe.AuthenticationFailed),
        (402, "billing_error", "payment required", pe.QuotaExhausted),
        (403, "permission_error", "no access", pe.PermissionDenied),
        (404, "not_found_error", "model: nope", pe.ModelNotFound),
        (413, "request_too_large", "Request exceeds the maximum size", pe.InvalidRequest),
        (429, "rate_limit_error", "slow down", pe.RateLimited),
        (500, "api_error", "Internal server error", pe.ServerError),
        (504, "timeout_error", "timed out", pe.ProviderTimeout),
        (529, "overloaded_error", "Overloaded", pe.Overloaded),
    ],
)
async def test_error_type_and_status_mapping(
    status: int, kind: str, message: str, cls: type[pe.ProviderError]
) -> None:
    """Each documented Anthropic error type maps to one class, keeping status and request id."""
    rec = Recorder(error_response(status, kind, message))
    with pytest.raises(pe.ProviderError) as info:
        await complete(provider(rec))
    assert type(info.value) is cls
    assert info.value.status == status
    assert info.value.request_id == "req_b"
    assert message in info.value.message


async def test_rate_limit_keeps_retry_after_and_header_request_id() -> None:
    """429 carries the parsed retry-after and the `request-id` header."""
    rec = Recorder(
        error_response(
            429, "rate_limit_error", "slow down", {"retry-after": "17", "request-id": "req_h"}
        )
    )
    with pytest.raises(pe.RateLimited) as info:
        await complete(provider(rec))
    assert info.value.retry_after_s == 17.0
    assert info.value.request_id == "req_h"
    assert info.value.retryable


async def test_should_retry_header_overrides_default() -> None:
    """`x-should-retry: false` makes an otherwise retryable 500 final."""
    rec = Recorder(error_response(500, "api_error", "boom", {"x-should-retry": "false"}))
    with pytest.raises(pe.ServerError) as info:
        await complete(provider(rec))
    assert not info.value.retryable


async def test_non_json_error_body_maps_by_status() -> None:
    """An HTML error page (e.g. from a proxy) still maps by HTTP status."""
    rec = Recorder(httpx.Response(502, text="<html>Bad gateway</html>"))
    with pytest.raises(pe.ServerError) as info:
        await complete(provider(rec))
    assert "Bad gateway" in info.value.message


async def test_connect_error_is_connection_failed() -> None:
    """A transport failure becomes ConnectionFailed."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(pe.ConnectionFailed):
        await complete(provider(refuse))
