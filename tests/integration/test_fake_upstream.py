"""The fake upstream as a real process on loopback: wire shapes, faults, control API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.fake_upstream.client import FakeUpstreamClient
from tests.support.procs import Proc, start_fake_upstream

OPENAI = "/v1/chat/completions"
ANTHROPIC = "/v1/messages"
GEMINI = "/v1beta/models/gemini-2.5-flash:generateContent"
GEMINI_STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
USER = "what is the weather"


@pytest.fixture(scope="module")
def proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    fake = start_fake_upstream(tmp_path_factory.mktemp("fake"))
    yield fake
    fake.stop()


@pytest.fixture
def fake(proc: Proc) -> FakeUpstreamClient:
    client = FakeUpstreamClient(proc.url)
    client.reset()
    return client


@pytest.fixture
def http(proc: Proc) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proc.url, timeout=10.0) as client:
        yield client


def openai_body(model: str = "gpt-4o", *, stream: bool = False, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": USER}]}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body | extra


def anthropic_body(model: str = "claude-sonnet-4-5", *, stream: bool = False) -> dict[str, Any]:
    messages = [{"role": "user", "content": [{"type": "text", "text": USER}]}]
    return {"model": model, "max_tokens": 100, "messages": messages, "stream": stream}


def gemini_body() -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": USER}]}]}


def sse_events(text: str) -> list[tuple[str | None, str]]:
    """(event, data) pairs of an SSE body."""
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields.get("event"), fields["data"]))
    return events


def sse_json(text: str) -> list[dict[str, Any]]:
    return [json.loads(data) for _event, data in sse_events(text) if data != "[DONE]"]


TOOL = {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris", "days": 2}}


# -- OpenAI ---------------------------------------------------------------------------------


def test_openai_default_reply_echoes_the_user(fake: FakeUpstreamClient, http: httpx.Client) -> None:
    """Unscripted OpenAI call: 200 chat.completion echoing the user, word usage, x-request-id."""
    response = http.post(OPENAI, json=openai_body())
    assert response.status_code == 200
    assert response.headers["x-request-id"].startswith("req_")
    data = response.json()
    assert data["object"] == "chat.completion" and data["model"] == "gpt-4o"
    choice = data["choices"][0]
    assert choice["message"]["content"] == f"echo: {USER}"
    assert choice["finish_reason"] == "stop"
    assert data["usage"] == {
        "prompt_tokens": 4,
        "completion_tokens": 5,
        "total_tokens": 9,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def test_openai_tool_calls_carry_json_string_arguments(
    fake: FakeUpstreamClient, http: httpx.Client
) -> None:
    """Scripted OpenAI tool calls: `arguments` is a JSON string, finish_reason tool_calls."""
    fake.script("gpt-4o", [{"tool_calls": [TOOL, {"name": "raw", "arguments": "{bad"}]}])
    choice = http.post(OPENAI, json=openai_body()).json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    first, second = choice["message"]["tool_calls"]
    assert first["id"] == "call_1" and first["type"] == "function"
    assert first["function"]["name"] == "get_weather"
    assert json.loads(first["function"]["arguments"]) == {"city": "Paris", "days": 2}
    assert second["id"].startswith("call_") and second["function"]["arguments"] == "{bad"


def test_openai_stream_sends_deltas_usage_chunk_and_done(
    fake: FakeUpstreamClient, http: httpx.Client
) -> None:
    """OpenAI SSE: content deltas, finish chunk, a usage chunk with no choices, then [DONE]."""
    fake.script(
        "gpt-4o", [{"text": "sunny and warm", "usage": {"input_tokens": 11, "output_tokens": 3}}]
    )
    response = http.post(OPENAI, json=openai_body(stream=True))
    assert response.headers["content-type"].startswith("text/event-stream")
    assert sse_events(response.text)[-1] == (None, "[DONE]")
    chunks = sse_json(response.text)
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0]["role"] == "assistant"
    assert "".join(d.get("content") or "" for d in deltas) == "sunny and warm"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 11
    assert chunks[-1]["usage"]["completion_tokens"] == 3


def test_openai_stream_tool_call_fragments_join_by_index(
    fake: FakeUpstreamClient, http: httpx.Client
) -> None:
    """OpenAI SSE tool calls: first fragment has id+name, argument pieces concatenate by index."""
    fake.script("gpt-4o", [{"tool_calls": [TOOL, {"name": "other", "arguments": {}}]}])
    response = http.post(OPENAI, json=openai_body(stream=True, stream_options=None))
    chunks = sse_json(response.text)
    assert all("usage" not in c for c in chunks)  # include_usage not requested
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for frag in chunk["choices"][0]["delta"].get("tool_calls", []):
            slot = calls.setdefault(frag["index"], {"id": "", "name": "", "args": ""})
            slot["id"] += frag.get("id", "")
            slot["name"] += frag.get("function", {}).get("name", "")
            slot["args"] += frag.get("function", {}).get("arguments", "")
    assert calls[0]["id"] == "call_1" and calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["args"]) == {"city": "Paris", "days": 2}
    assert calls[1]["name"] == "other" and json.loads(calls[1]["args"]) == {}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_tool_result_turn_answers_done(fake: FakeUpstreamClient, http: httpx.Client) -> None:
    """An unscripted turn ending in a tool result answers `done: <result>` in all protocols."""
    openai_messages = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "rain"},
    ]
    data = http.post(OPENAI, json={"model": "m", "messages": openai_messages}).json()
    assert data["choices"][0]["message"]["content"] == "done: rain"
    anthropic_messages = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "snow"}],
        },
    ]
    body = {"model": "m", "max_tokens": 5, "messages": anthropic_messages}
    assert http.post(ANTHROPIC, json=body).json()["content"][0]["text"] == "done: snow"
    gemini_contents = [
        {"role": "user", "parts": [{"text": "weather?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "w", "args": {}}}]},
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "w", "response": {"result": "fog"}}}],
        },
    ]
    data = http.post(GEMINI, json={"contents": gemini_contents}).json()
    assert data["candidates"][0]["content"]["parts"][0]["text"] == "done: fog"


# -- Anthropic ------------------------------------------------------------------------------


def test_anthropic_tool_use_blocks(fake: FakeUpstreamClient, http: httpx.Client) -> None:
    """Anthropic non-streaming: text then tool_use blocks (toolu_ ids, object input)."""
    fake.script(
        "claude-sonnet-4-5",
        [
            {
                "text": "Checking.",
                "tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}],
            }
        ],
    )
    response = http.post(ANTHROPIC, json=anthropic_body())
    assert response.headers["request-id"].startswith("req_")
    data = response.json()
    assert (data["type"], data["role"], data["stop_reason"]) == ("message", "assistant", "tool_use")
    text, tool = data["content"]
    assert text == {"type": "text", "text": "Checking."}
    assert tool["type"] == "tool_use" and tool["id"].startswith("toolu_")
    assert (tool["name"], tool["input"]) == ("get_weather", {"city": "Oslo"})
    assert set(data["usage"]) >= {"input_tokens", "output_tokens", "cache_read_input_tokens"}


def test_anthropic_default_reply(fake: FakeUpstreamClient, http: httpx.Client) -> None:
    """Anthropic unscripted: one text block echoing the user, stop_reason end_turn."""
    data = http.post(ANTHROPIC, json=anthropic_body()).json()
    assert data["content"] == [{"type": "text", "text": f"echo: {USER}"}]
    assert data["stop_reason"] == "end_turn"
    assert data["usage"]["input_tokens"] == 4 and data["usage"]["output_tokens"] == 5


def test_anthropic_stream_event_sequence(fake: FakeUpstreamClient, http: httpx.Client) -> None:
    """Anthropic SSE: message_start, ping, text and tool_use blocks, message_delta, stop."""
    fake.script(
        "claude-sonnet-4-5",
        [
            {
                "text": "Let me look.",
                "tool_calls": [TOOL],
                "usage": {"input_tokens": 20, "output_tokens": 8, "cached_input_tokens": 5},
            }
        ],
    )
    response = http.post(ANTHROPIC, json=anthropic_body(stream=True))
    events = sse_events(response.text)
    for name, data in events:
        assert json.loads(data)["type"] == name
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-2:] == ["message_delta", "message_stop"]
    payloads = [json.loads(data) for _, data in events]
    starts = [p["content_block"] for p in payloads if p["type"] == "content_block_start"]
    assert starts[0] == {"type": "text", "text": ""}
    assert starts[1] == {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}
    deltas = [p for p in payloads if p["type"] == "content_block_delta"]
    text = "".join(d["delta"]["text"] for d in deltas if d["index"] == 0)
    partial = "".join(d["delta"]["partial_json"] for d in deltas if d["index"] == 1)
    assert text == "Let me look."
    assert {d["delta"]["type"] for d in deltas if d["index"] == 1} == {"input_json_delta"}
    assert json.loads(partial) == {"city": "Paris", "days": 2}
    message_delta = payloads[-2]
    assert message_delta["delta"]["stop_reason"] == "tool_use"
    assert message_delta["usage"]["output_tokens"] == 8
    assert message_delta["usage"]["input_tokens"] == 15
    assert message_delta["usage"]["cache_read_input_tokens"] == 5


# -- Gemini ---------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/v1beta", "/v1"])
def test_gemini_function_call_parts(
    fake: FakeUpstreamClient, http: httpx.Client, prefix: str
) -> None:
    """Gemini generateContent (v1beta and v1): functionCall parts with id, usageMetadata."""
    fake.script("gemini-2.5-flash", [{"tool_calls": [TOOL]}])
    path = f"{prefix}/models/gemini-2.5-flash:generateContent"
    data = http.post(path, json=gemini_body()).json()
    candidate = data["candidates"][0]
    assert candidate["content"]["role"] == "model"
    assert candidate["content"]["parts"] == [
        {
            "functionCall": {
                "id": "call_1",
                "name": "get_weather",
                "args": {"city": "Paris", "days": 2},
            }
        }
    ]
    assert candidate["finishReason"] == "STOP"
    usage = data["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    assert fake.requests(model="gemini-2.5-flash")[0].path == path


def test_gemini_stream_is_sse_without_done(fake: FakeUpstreamClient, http: httpx.Client) -> None:
    """Gemini streamGenerateContent?alt=sse: data-only events, usage and finish on the last."""
    fake.script("gemini-2.5-flash", [{"text": "cloudy skies", "tool_calls": [TOOL]}])
    response = http.post(GEMINI_STREAM, json=gemini_body())
    events = sse_events(response.text)
    assert all(name is None and data != "[DONE]" for name, data in events)
    chunks = [json.loads(data) for _, data in events]
    parts = [p for c in chunks for p in c["candidates"][0]["content"]["parts"]]
    assert "".join(p.get("text", "") for p in parts) == "cloudy skies"
    assert parts[-1]["functionCall"]["name"] == "get_weather"
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert "usageMetadata" in chunks[-1]


def test_gemini_unknown_method_is_404(fake: FakeUpstreamClient, http: httpx.Client) -> None:
    """An unknown Gemini method answers 404 in Gemini's error shape."""
    response = http.post("/v1beta/models/gemini-2.5-flash:embedContent", json={})
    assert response.status_code == 404
    assert response.json()["error"]["status"] == "NOT_FOUND"


# -- errors and faults ----------------------------------------------------------------------


def test_scripted_status_and_retry_headers(fake: FakeUpstreamClient, http: httpx.Client) -> None:
    """A scripted 429 carries the scripted retry-after / retry-after-ms / x-should-retry."""
    headers = {"retry-after": "3", "retry-after-ms": "2500", "x-should-retry": "true"}
    fake.script("gpt-4o", [{"status": 429, "headers": headers}])
    response = http.post(OPENAI, json=openai_body())
    assert response.status_code == 429
    for name, value in headers.items():
        assert response.headers[name] == value
    assert response.json() == {
        "error": {
            "message": "Rate limit reached for requests.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        (
            OPENAI,
            openai_body("m"),
            {
                "error": {
                    "message": "Overloaded!",
                    "type": "server_error",
                    "param": None,
                    "code": "overloaded",
                }
            },
        ),
        (
            ANTHROPIC,
            anthropic_body("m"),
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded!"}},
        ),
        (
            "/v1beta/models/m:generateContent",
            gemini_body(),
            {
                "error": {
                    "code": 503,
                    "message": "Overloaded!",
                    "status": "UNAVAILABLE",
                    "details": [],
                }
            },
        ),
    ],
    ids=["openai", "anthropic", "gemini"],
)
def test_error_bodies_per_protocol(
    fake: FakeUpstreamClient, http: httpx.Client, path: str, body: Any, expected: Any
) -> None:
    """Scripted errors are rendered in each protocol's own error shape and status."""
    status = 529 if path == ANTHROPIC else 503
    error = {"message": "Overloaded!", "code": "overloaded"}
    fake.script("m", [{"status": status, "error": error}])
    response = http.post(path, json=body)
    assert response.status_code == status
    data = response.json()
    data.pop("request_id", None)
    assert data == expected


def test_gemini_429_carries_retry_info(fake: FakeUpstreamClient, http: httpx.Client) -> None:
    """Gemini 429 with `retry_delay_s` puts a google.rpc.RetryInfo retryDelay in the body."""
    fake.script("gemini-2.5-flash", [{"status": 429, "retry_delay_s": 2}])
    response = http.post(GEMINI, json=gemini_body())
    assert response.status_code == 429
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert error["details"] == [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"}
    ]


def test_anthropic_error_body_has_request_id(fake: FakeUpstreamClient, http: httpx.Client) -> None:
    """Anthropic error bodies carry the same request_id as the request-id header."""
    fake.script("m", [{"status": 429}])
    response = http.post(ANTHROPIC, json=anthropic_body("m"))
    assert response.json()["error"]["type"] == "rate_limit_error"
    assert response.json()["request_id"] == response.headers["request-id"]


@pytest.mark.parametrize("stream", [False, True])
def test_malformed_body_is_200_and_not_json(
    fake: FakeUpstreamClient, http: httpx.Client, stream: bool
) -> None:
    """`malformed` answers 200 with a body (or SSE data) that does not parse as JSON."""
    fake.script("gpt-4o", [{"malformed": True}])
    response = http.post(OPENAI, json=openai_body(stream=stream))
    assert response.status_code == 200
    payload = sse_events(response.text)[0][1] if stream else response.text
    with pytest.raises(json.JSONDecodeError):
        json.loads(payload)


@pytest.mark.parametrize("stream", [False, True])
def test_reset_mid_body_breaks_the_connection(
    fake: FakeUpstreamClient, http: httpx.Client, stream: bool
) -> None:
    """`reset_mid_body` sends 200 and part of the body, then drops the connection."""
    fake.script("claude-sonnet-4-5", [{"reset_mid_body": True}])
    received = b""
    body = anthropic_body(stream=stream)
    with (
        pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)),
        http.stream("POST", ANTHROPIC, json=body) as response,
    ):
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            received += chunk
    assert received  # part of the body did arrive
    assert http.post(ANTHROPIC, json=anthropic_body()).status_code == 200  # server still fine


@pytest.mark.parametrize(
    ("path", "body", "model"),
    [
        (OPENAI, openai_body(stream=True), "gpt-4o"),
        (ANTHROPIC, anthropic_body(stream=True), "claude-sonnet-4-5"),
        (GEMINI_STREAM, gemini_body(), "gemini-2.5-flash"),
    ],
    ids=["openai", "anthropic", "gemini"],
)
def test_stream_error_event_after_200(
    fake: FakeUpstreamClient, http: httpx.Client, path: str, body: Any, model: str
) -> None:
    """`stream_error`: HTTP 200, one normal chunk, then the protocol's in-stream error event."""
    spec = {"type": "overloaded_error" if path == ANTHROPIC else "UNAVAILABLE", "message": "busy"}
    fake.script(model, [{"stream_error": spec}])
    response = http.post(path, json=body)
    assert response.status_code == 200
    events = sse_events(response.text)
    assert len(events) == 2
    assert "error" not in json.loads(events[0][1])
    name, data = events[1]
    error = json.loads(data)
    if path == ANTHROPIC:
        assert name == "error" and error["type"] == "error"
        assert error["error"] == {"type": "overloaded_error", "message": "busy"}
    elif path == OPENAI:
        assert error["error"]["type"] == "UNAVAILABLE" and error["error"]["message"] == "busy"
    else:
        assert error["error"] == {"code": 503, "message": "busy", "status": "UNAVAILABLE"}


def test_latency_delays_the_answer(fake: FakeUpstreamClient, proc: Proc) -> None:
    """`latency_s` holds the response back: a client with a shorter read timeout times out."""
    fake.script("gpt-4o", [{"latency_s": 30}])
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(proc.url + OPENAI, json=openai_body(), timeout=httpx.Timeout(5, read=0.3))
    assert len(fake.requests(model="gpt-4o")) == 1


def test_drip_slows_a_stream_between_events(fake: FakeUpstreamClient, proc: Proc) -> None:
    """`drip_s` sends the first event at once and waits between later ones."""
    fake.script("gpt-4o", [{"text": "a b c", "drip_s": 30}])
    first = b""
    timeout = httpx.Timeout(5, read=2.0)  # generous: the first event must beat it
    with (
        pytest.raises(httpx.ReadTimeout),
        httpx.stream(
            "POST", proc.url + OPENAI, json=openai_body(stream=True), timeout=timeout
        ) as response,
    ):
        for chunk in response.iter_bytes():
            first += chunk
    assert first.startswith(b"data: {") and b"[DONE]" not in first


# -- script control -------------------------------------------------------------------------


def test_repeat_and_default_queue(fake: FakeUpstreamClient, http: httpx.Client) -> None:
    """`repeat` serves a step n times; `*` serves any model with an empty queue."""
    fake.script("gpt-4o", [{"status": 500, "repeat": 2}, {"text": "ok"}])
    fake.script("*", [{"text": "fallback", "repeat": -1}])
    statuses = [http.post(OPENAI, json=openai_body()).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    texts = [
        http.post(OPENAI, json=openai_body(m)).json()["choices"][0]["message"]["content"]
        for m in ("gpt-4o", "other", "other")
    ]
    assert texts == ["fallback"] * 3
    assert fake.pending() == {"*": 1}


def test_models_are_isolated(fake: FakeUpstreamClient, http: httpx.Client) -> None:
    """A step scripted for one model is not served to another model."""
    fake.script("gpt-4o", [{"status": 503}])
    assert http.post(OPENAI, json=openai_body("gpt-4o-mini")).status_code == 200
    assert http.post(OPENAI, json=openai_body("gpt-4o")).status_code == 503


def test_requests_are_recorded_with_auth_redacted(
    fake: FakeUpstreamClient, http: httpx.Client
) -> None:
    """Every call is recorded (failed ones too), filterable, with credentials redacted."""
    fake.script("gpt-4o", [{"status": 429}])
    http.post(OPENAI, json=openai_body(), headers={"authorization": "Bearer sk-secret"})
    http.post(ANTHROPIC, json=anthropic_body(), headers={"x-api-key": "sk-ant-secret"})
    http.post(GEMINI + "?key=g-secret", json=gemini_body(), headers={"x-goog-api-key": "g-secret"})
    records = fake.requests()
    assert [r.model for r in records] == ["gpt-4o", "claude-sonnet-4-5", "gemini-2.5-flash"]
    assert records[0].headers["authorization"] == "<redacted:present>"
    assert records[1].headers["x-api-key"] == "<redacted:present>"
    assert records[2].headers["x-goog-api-key"] == "<redacted:present>"
    assert records[2].query["key"] == "<redacted:present>"
    assert "secret" not in json.dumps([r.model_dump() for r in records])
    assert records[0].body == openai_body()
    assert [r.path for r in fake.requests(path="/v1/messages")] == [ANTHROPIC]
    raw = http.get("/_fake/requests", params={"model": "gpt-4o"}).json()
    assert raw["count"] == 1 and set(raw["requests"][0]) >= {
        "path",
        "model",
        "headers",
        "body",
        "received_at",
    }


def test_invalid_json_request_is_recorded_and_rejected(
    fake: FakeUpstreamClient, http: httpx.Client
) -> None:
    """A request body that is not JSON is recorded as text and answered 400 in protocol shape."""
    response = http.post(OPENAI, content=b"{nope", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert fake.requests()[0].body == "{nope"


def test_reset_clears_scripts_and_records(fake: FakeUpstreamClient, http: httpx.Client) -> None:
    """`POST /_fake/reset` drops queued steps and the request log."""
    fake.script("gpt-4o", [{"status": 500}])
    http.post(ANTHROPIC, json=anthropic_body())
    fake.reset()
    assert fake.requests() == [] and fake.pending() == {}
    assert http.post(OPENAI, json=openai_body()).status_code == 200


def test_bad_script_is_422(fake: FakeUpstreamClient, http: httpx.Client) -> None:
    """A script with an unknown field or bad repeat is rejected with 422 and queues nothing."""
    assert (
        http.post("/_fake/script", json={"model": "m", "steps": [{"stauts": 1}]}).status_code == 422
    )
    assert (
        http.post("/_fake/script", json={"model": "m", "steps": [{"repeat": 0}]}).status_code == 422
    )
    assert http.get("/_fake/health").json() == {"status": "ok"}
    assert fake.pending() == {}


async def test_concurrent_requests_each_take_one_step(fake: FakeUpstreamClient, proc: Proc) -> None:
    """Under concurrency every scripted step is served exactly once and every call recorded."""
    n = 60
    await fake.ascript("gpt-4o", [{"text": f"answer {i}", "latency_s": 0.2} for i in range(n)])
    async with httpx.AsyncClient(
        base_url=proc.url, timeout=10, limits=httpx.Limits(max_connections=n)
    ) as client:
        responses = await asyncio.gather(
            *(client.post(OPENAI, json=openai_body()) for _ in range(n))
        )
    texts = {r.json()["choices"][0]["message"]["content"] for r in responses}
    assert texts == {f"answer {i}" for i in range(n)}
    assert len(await fake.arequests(model="gpt-4o")) == n
    await fake.areset()
