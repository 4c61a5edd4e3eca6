"""GeminiProvider against httpx.MockTransport: exact requests, parsing, streaming, errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from app.providers import errors as pe
from app.providers.base import (
    Completion,
    CompletionRequest,
    Message,
    StreamDone,
    TextDelta,
    ToolCall,
)
from app.providers.gemini import GeminiProvider
from app.providers.gemini_wire import SYNTHETIC_ID_PREFIX
from tests.support.mock_http import WEATHER, Handler, Recorder, mock_client

BASE = "https://generativelanguage.googleapis.com"
MODEL = "gemini-2.5-flash"


def provider(handler: Handler, api_key: str | None = "g-test-key") -> GeminiProvider:
    return GeminiProvider(mock_client(handler, BASE), api_key=api_key)


def response_json(parts: list[dict[str, Any]], finish: str | None = "STOP", **kw: Any) -> Any:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    body: dict[str, Any] = {
        "candidates": [candidate],
        "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 3, "totalTokenCount": 15},
        "modelVersion": "gemini-2.5-flash-001",
        "responseId": "resp-1",
    }
    body.update(kw)
    return body


def sse(*chunks: Any) -> bytes:
    return b"".join(f"data: {json.dumps(c)}\r\n\r\n".encode() for c in chunks)


def stream_response(body: bytes) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})


def rpc_error(status: int, rpc: str, message: str, details: list[Any] | None = None) -> Any:
    err: dict[str, Any] = {"code": status, "message": message, "status": rpc}
    if details is not None:
        err["details"] = details
    return {"error": err}


def retry_info(delay: str) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}


def quota_failure(quota_id: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [{"quotaMetric": "m", "quotaId": quota_id, "quotaValue": "20"}],
    }


def simple_request(**kw: Any) -> CompletionRequest:
    return CompletionRequest(model=MODEL, messages=[Message("user", "Hi")], **kw)


async def complete(p: GeminiProvider, request: CompletionRequest | None = None) -> Completion:
    return await p.complete(request or simple_request(), timeout_s=5)


async def collect(p: GeminiProvider, request: CompletionRequest | None = None) -> list[Any]:
    return [event async for event in p.stream(request or simple_request(), timeout_s=5)]


# --- requests -----------------------------------------------------------------------------


async def test_request_json_headers_and_path_are_exact() -> None:
    """systemInstruction, user/model roles, tools, toolConfig ANY and generationConfig."""
    rec = Recorder(httpx.Response(200, json=response_json([{"text": "ok"}])))
    request = CompletionRequest(
        model=MODEL,
        messages=[
            Message("system", "Be brief."),
            Message("user", "Hello"),
            Message("assistant", "Hi there"),
            Message("user", "Weather?"),
        ],
        tools=[WEATHER],
        tool_choice="required",
        max_output_tokens=100,
        temperature=0.5,
    )
    await complete(provider(rec), request)
    sent = rec.requests[0]
    assert str(sent.url) == f"{BASE}/v1beta/models/{MODEL}:generateContent"
    assert sent.headers["x-goog-api-key"] == "g-test-key"
    assert rec.body == {
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Hello"}]},
            {"role": "model", "parts": [{"text": "Hi there"}]},
            {"role": "user", "parts": [{"text": "Weather?"}]},
        ],
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "Weather for a city",
                        "parameters": dict(WEATHER.parameters),
                    }
                ]
            }
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
        "generationConfig": {"temperature": 0.5, "maxOutputTokens": 100},
    }


@pytest.mark.parametrize(("choice", "mode"), [("auto", "AUTO"), ("none", "NONE")])
async def test_tool_choice_maps_to_function_calling_mode(choice: Any, mode: str) -> None:
    """tool_choice auto/none → functionCallingConfig.mode AUTO/NONE."""
    rec = Recorder(httpx.Response(200, json=response_json([{"text": "ok"}])))
    await complete(provider(rec), simple_request(tools=[WEATHER], tool_choice=choice))
    assert rec.body["toolConfig"] == {"functionCallingConfig": {"mode": mode}}


async def test_api_version_and_models_prefix_and_no_key() -> None:
    """api_version picks the path; a `models/` prefix is not doubled; no key, no header."""
    rec = Recorder(httpx.Response(200, json=response_json([{"text": "ok"}])))
    client = httpx.AsyncClient(transport=httpx.MockTransport(rec), base_url=BASE)
    p = GeminiProvider(client, api_key=None, api_version="v1")
    await p.complete(CompletionRequest("models/gemini-x", [Message("user", "Hi")]), timeout_s=5)
    assert rec.requests[0].url.path == "/v1/models/gemini-x:generateContent"
    assert "x-goog-api-key" not in rec.requests[0].headers


async def test_tool_round_trip_echoes_id_and_thought_signature() -> None:
    """A functionCall's id and thoughtSignature come back unchanged; the response names it."""
    first = response_json(
        [
            {"text": "Looking up."},
            {
                "functionCall": {"id": "fc-7", "name": "get_weather", "args": {"city": "Paris"}},
                "thoughtSignature": "c2lnbmF0dXJlLTE=",
            },
        ]
    )
    rec = Recorder(
        httpx.Response(200, json=first), httpx.Response(200, json=response_json([{"text": "18C"}]))
    )
    p = provider(rec)
    result = await complete(p, simple_request(tools=[WEATHER]))
    call = result.tool_calls[0]
    assert call == ToolCall(
        "fc-7",
        "get_weather",
        {"city": "Paris"},
        '{"city": "Paris"}',
        extra={"thoughtSignature": "c2lnbmF0dXJlLTE="},
    )
    assert result.finish_reason == "tool_calls"
    follow_up = CompletionRequest(
        model=MODEL,
        messages=[
            Message("user", "Hi"),
            Message("assistant", result.text, tool_calls=result.tool_calls),
            Message("tool", "18C", tool_call_id="fc-7", tool_name="get_weather"),
        ],
        tools=[WEATHER],
    )
    await complete(p, follow_up)
    assert rec.body["contents"] == [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {
            "role": "model",
            "parts": [
                {"text": "Looking up."},
                {
                    "functionCall": {
                        "name": "get_weather",
                        "args": {"city": "Paris"},
                        "id": "fc-7",
                    },
                    "thoughtSignature": "c2lnbmF0dXJlLTE=",
                },
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"result": "18C"},
                        "id": "fc-7",
                    }
                }
            ],
        },
    ]


async def test_synthetic_ids_are_stable_and_never_sent_back() -> None:
    """Calls without an id get a stable synthetic id; responses are merged and named by call."""
    body = response_json(
        [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
            {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
        ]
    )
    rec = Recorder(httpx.Response(200, json=body))
    p = provider(rec)
    first, again = await complete(p), await complete(p)
    ids = [c.id for c in first.tool_calls]
    assert ids == [c.id for c in again.tool_calls]
    assert len(set(ids)) == 2 and all(i.startswith(SYNTHETIC_ID_PREFIX) for i in ids)
    follow_up = CompletionRequest(
        model=MODEL,
        messages=[
            Message("assistant", None, tool_calls=first.tool_calls),
            Message("tool", "18C", tool_call_id=ids[0]),  # no tool_name: found from the call
            Message("tool", "no such city", tool_call_id=ids[1], is_error=True),
        ],
    )
    await complete(p, follow_up)
    assert rec.body["contents"] == [
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"result": "18C"}}},
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"error": "no such city"},
                    }
                },
            ],
        },
    ]


# --- responses ----------------------------------------------------------------------------


async def test_parses_text_usage_model_and_skips_thoughts() -> None:
    """Thought parts are not answer text; thoughts count as output; cached tokens kept."""
    body = response_json(
        [{"text": "thinking...", "thought": True}, {"text": "Hello "}, {"text": "world"}],
        usageMetadata={
            "promptTokenCount": 100,
            "candidatesTokenCount": 10,
            "thoughtsTokenCount": 40,
            "cachedContentTokenCount": 60,
            "totalTokenCount": 150,
        },
    )
    result = await complete(provider(Recorder(httpx.Response(200, json=body))))
    assert result.text == "Hello world"
    assert result.tool_calls == ()
    assert result.finish_reason == "stop"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (100, 50)
    assert result.usage.cached_input_tokens == 60
    assert result.model == "gemini-2.5-flash-001"
    assert result.request_id == "resp-1"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "other"),
        ("FINISH_REASON_UNSPECIFIED", "other"),
    ],
)
async def test_finish_reason_mapping(raw: str, expected: str) -> None:
    """Gemini finishReason values map onto the common finish reasons."""
    rec = Recorder(httpx.Response(200, json=response_json([{"text": "x"}], finish=raw)))
    result = await complete(provider(rec))
    assert (result.finish_reason, result.raw_finish_reason) == (expected, raw)


async def test_blocked_prompt_without_candidates_is_content_filter() -> None:
    """promptFeedback.blockReason with no candidates reads as content_filter, empty text."""
    body = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 4}}
    result = await complete(provider(Recorder(httpx.Response(200, json=body))))
    assert (result.text, result.finish_reason, result.raw_finish_reason) == (
        "",
        "content_filter",
        "SAFETY",
    )


async def test_malformed_json_is_malformed_response() -> None:
    """A 200 whose body is not JSON raises MalformedResponse (retryable)."""
    rec = Recorder(httpx.Response(200, text="{truncated"))
    with pytest.raises(pe.MalformedResponse) as info:
        await complete(provider(rec))
    assert info.value.retryable


async def test_wrong_shape_is_malformed_response() -> None:
    """Candidates whose parts are not objects raise MalformedResponse."""
    body = {"candidates": [{"content": {"parts": ["oops"]}, "finishReason": "STOP"}]}
    with pytest.raises(pe.MalformedResponse):
        await complete(provider(Recorder(httpx.Response(200, json=body))))


# --- streaming ----------------------------------------------------------------------------


async def test_stream_accumulates_text_calls_and_last_usage() -> None:
    """Text pieces stream out; functionCall parts are collected; usage from the last chunk."""
    chunks = [
        response_json([{"text": "Let me "}], finish=None, usageMetadata={"promptTokenCount": 9}),
        response_json([{"text": "check."}], finish=None, usageMetadata=None),
        response_json(
            [
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Rome"}},
                    "thoughtSignature": "sig-A",
                }
            ],
            finish="STOP",
            usageMetadata={"promptTokenCount": 9, "candidatesTokenCount": 7},
        ),
    ]
    rec = Recorder(stream_response(sse(*chunks)))
    events = await collect(provider(rec), simple_request(tools=[WEATHER]))
    sent = rec.requests[0]
    assert sent.url.path == f"/v1beta/models/{MODEL}:streamGenerateContent"
    assert sent.url.params["alt"] == "sse"
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Let me ", "check."]
    done = events[-1]
    assert isinstance(done, StreamDone)
    result = done.completion
    assert result.text == "Let me check."
    assert [(c.name, dict(c.arguments), dict(c.extra)) for c in result.tool_calls] == [
        ("get_weather", {"city": "Rome"}, {"thoughtSignature": "sig-A"})
    ]
    assert result.finish_reason == "tool_calls"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (9, 7)


async def test_stream_and_complete_give_the_same_synthetic_ids() -> None:
    """The same calls get the same ids whether streamed or not."""
    parts = [{"functionCall": {"name": "now", "args": {}}}]
    plain = await complete(provider(Recorder(httpx.Response(200, json=response_json(parts)))))
    streamed = await collect(provider(Recorder(stream_response(sse(response_json(parts))))))
    assert streamed[-1].completion.tool_calls == plain.tool_calls


async def test_stream_error_object_raises_mapped_error() -> None:
    """An `error` object in a data event raises the error its status maps to."""
    chunks = [
        response_json([{"text": "partial"}], finish=None),
        rpc_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    ]
    seen: list[Any] = []
    with pytest.raises(pe.Overloaded) as info:
        async for event in provider(Recorder(stream_response(sse(*chunks)))).stream(
            simple_request(), timeout_s=5
        ):
            seen.append(event)
    assert seen == [TextDelta("partial")]
    assert info.value.status == 503


async def test_stream_http_error_is_mapped() -> None:
    """A streaming request refused with 429 + RetryInfo raises RateLimited with the hint."""
    body = rpc_error(429, "RESOURCE_EXHAUSTED", "Resource exhausted", [retry_info("7s")])
    with pytest.raises(pe.RateLimited) as info:
        await collect(provider(Recorder(httpx.Response(429, json=body))))
    assert info.value.retry_after_s == 7.0


async def test_stream_malformed_data_is_malformed_response() -> None:
    """A data event that is not JSON raises MalformedResponse."""
    body = sse(response_json([{"text": "a"}], finish=None)) + b"data: {nope\n\n"
    with pytest.raises(pe.MalformedResponse):
        await collect(provider(Recorder(stream_response(body))))


async def test_stream_without_finish_reason_is_malformed_response() -> None:
    """A stream cut before any finishReason is incomplete: MalformedResponse."""
    body = sse(response_json([{"text": "a"}], finish=None))
    with pytest.raises(pe.MalformedResponse, match="finishReason"):
        await collect(provider(Recorder(stream_response(body))))


# --- errors -------------------------------------------------------------------------------

BAD_KEY_DETAILS = [
    {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
    }
]
BILLING = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
)


@pytest.mark.parametrize(
    ("status", "rpc", "message", "details", "cls"),
    [
        (400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
         BAD_KEY_DETAILS, pe.AuthenticationFailed),
        (400, "INVALID_ARGUMENT", "Invalid JSON payload received.", None, pe.InvalidRequest),
        (400, "FAILED_PRECONDITION", "User location is not supported.", None, pe.InvalidRequest),
        (403, "PERMISSION_DENIED", "Permission denied.", None, pe.PermissionDenied),
        (404, "NOT_FOUND", "models/nope is not found", None, pe.ModelNotFound),
        (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", None,
         pe.RateLimited),
        (429, "RESOURCE_EXHAUSTED", BILLING, [], pe.QuotaExhausted),
        (429, "RESOURCE_EXHAUSTED", BILLING,
         [quota_failure("GenerateRequestsPerMinutePerProjectPerModel-FreeTier"),
          retry_info("26s")], pe.RateLimited),
        (429, "RESOURCE_EXHAUSTED", BILLING,
         [quota_failure("GenerateRequestsPerDayPerProjectPerModel-FreeTier"), retry_info("36s")],
         pe.QuotaExhausted),
        (500, "INTERNAL", "An internal error has occurred.", None, pe.ServerError),
        (503, "UNAVAILABLE", "The model is overloaded.", None, pe.Overloaded),
        (504, "DEADLINE_EXCEEDED", "Deadline exceeded.", None, pe.ProviderTimeout),
    ],
)  # fmt: skip
async def test_status_mapping(
    status: int, rpc: str, message: str, details: Any, cls: type[pe.ProviderError]
) -> None:
    """Each google.rpc status (and the key/quota special cases) maps to one class."""
    rec = Recorder(httpx.Response(status, json=rpc_error(status, rpc, message, details)))
    with pytest.raises(pe.ProviderError) as info:
        await complete(provider(rec))
    assert type(info.value) is cls
    assert info.value.status == status
    assert message in info.value.message


@pytest.mark.parametrize(("delay", "seconds"), [("36s", 36.0), ("1.5s", 1.5)])
async def test_rate_limit_retry_delay_from_retry_info(delay: str, seconds: float) -> None:
    """RetryInfo.retryDelay ("36s", "1.5s") becomes retry_after_s on RateLimited."""
    body = rpc_error(429, "RESOURCE_EXHAUSTED", "Resource exhausted", [retry_info(delay)])
    with pytest.raises(pe.RateLimited) as info:
        await complete(provider(Recorder(httpx.Response(429, json=body))))
    assert info.value.retry_after_s == seconds
    assert info.value.retryable


async def test_retry_hint_from_message_text() -> None:
    """Without RetryInfo, "Please retry in 20.04s." in the message is the hint."""
    body = rpc_error(429, "RESOURCE_EXHAUSTED", "Too many requests. Please retry in 20.04s.")
    with pytest.raises(pe.RateLimited) as info:
        await complete(provider(Recorder(httpx.Response(429, json=body))))
    assert info.value.retry_after_s == pytest.approx(20.04)


async def test_list_wrapped_error_body_is_understood() -> None:
    """An error body wrapped in a one-element list maps like the plain one."""
    body = [rpc_error(503, "UNAVAILABLE", "overloaded")]
    with pytest.raises(pe.Overloaded):
        await complete(provider(Recorder(httpx.Response(503, json=body))))


async def test_quota_exhausted_is_not_retryable() -> None:
    """A billing 429 without a retry hint is final, not retried."""
    body = rpc_error(429, "RESOURCE_EXHAUSTED", BILLING)
    with pytest.raises(pe.QuotaExhausted) as info:
        await complete(provider(Recorder(httpx.Response(429, json=body))))
    assert not info.value.retryable
