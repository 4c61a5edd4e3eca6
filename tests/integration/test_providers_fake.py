"""The three provider clients against the real fake-upstream process on loopback."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.fake_upstream.client import FakeUpstreamClient
from app.providers import errors as pe
from app.providers.anthropic import AnthropicProvider
from app.providers.base import (
    Completion,
    CompletionRequest,
    Message,
    Provider,
    StreamDone,
    TextDelta,
    ToolSpec,
    Usage,
)
from app.providers.gemini import GeminiProvider
from app.providers.http import make_client
from app.providers.openai import OpenAIProvider
from app.resilience.timeouts import Timeouts
from tests.support.procs import Proc, start_fake_upstream

NAMES = ["openai", "anthropic", "gemini"]
TIMEOUTS = Timeouts(connect=2.0, read=10.0, write=5.0, pool=2.0)
WEATHER = ToolSpec(
    "get_weather",
    "Weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
CALL = {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}

Factory = Callable[[str], Provider]
BUILDERS: dict[str, Factory] = {
    "openai": lambda url: OpenAIProvider(make_client(f"{url}/v1", TIMEOUTS, 4), api_key="sk-t"),
    "anthropic": lambda url: AnthropicProvider(make_client(url, TIMEOUTS, 4), api_key="sk-ant-t"),
    "gemini": lambda url: GeminiProvider(make_client(url, TIMEOUTS, 4), api_key="g-t"),
}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    proc = start_fake_upstream(Path(tmp_path_factory.mktemp("providers-fake")))
    yield proc
    proc.stop()


@pytest.fixture
def fake(upstream: Proc) -> FakeUpstreamClient:
    return FakeUpstreamClient(upstream.url)


@pytest.fixture(params=NAMES)
async def provider(request: pytest.FixtureRequest, upstream: Proc) -> AsyncIterator[Provider]:
    built = BUILDERS[request.param](upstream.url)
    yield built
    await built.aclose()


def model_name() -> str:
    return f"model-{uuid.uuid4().hex[:8]}"


def ask(model: str, *messages: Message) -> CompletionRequest:
    history = messages or (Message("system", "Be brief."), Message("user", "Weather in Paris?"))
    return CompletionRequest(model=model, messages=list(history), tools=[WEATHER])


async def run(provider: Provider, request: CompletionRequest, stream: bool) -> Completion:
    if not stream:
        return await provider.complete(request, timeout_s=10)
    deltas: list[str] = []
    done: Completion | None = None
    async for event in provider.stream(request, timeout_s=10):
        if isinstance(event, TextDelta):
            deltas.append(event.text)
        elif isinstance(event, StreamDone):
            done = event.completion
    assert done is not None
    assert "".join(deltas) == done.text
    return done


def answered_call_id(provider: Provider, body: Any) -> str:
    """The tool-call id the client sent back in its tool result, read from the wire body."""
    if provider.name == "openai":
        return str(body["messages"][-1]["tool_call_id"])
    if provider.name == "anthropic":
        return str(body["messages"][-1]["content"][0]["tool_use_id"])
    response = body["contents"][-1]["parts"][0]["functionResponse"]
    assert response["name"] == "get_weather"
    return str(response["id"])


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_tool_round_trip(provider: Provider, fake: FakeUpstreamClient, stream: bool) -> None:
    """A tool call comes back parsed, its result goes back with the same id, the text ends it."""
    model = model_name()
    await fake.ascript(model, [{"text": "Let me check.", "tool_calls": [CALL]}, {}])
    first = await run(provider, ask(model), stream)
    assert first.text == "Let me check."
    assert first.finish_reason == "tool_calls"
    [call] = first.tool_calls
    assert (call.name, dict(call.arguments), call.arguments_error) == (
        "get_weather",
        {"city": "Paris", "unit": "celsius"},
        None,
    )
    follow_up = ask(
        model,
        Message("user", "Weather in Paris?"),
        Message("assistant", first.text, tool_calls=first.tool_calls),
        Message("tool", "18C and sunny", tool_call_id=call.id, tool_name=call.name),
    )
    second = await run(provider, follow_up, stream)
    assert second.text == "done: 18C and sunny"
    assert (second.finish_reason, second.tool_calls) == ("stop", ())
    recorded = await fake.arequests(model=model)
    assert len(recorded) == 2
    assert answered_call_id(provider, recorded[1].body) == call.id


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_usage_means_the_same_for_every_vendor(
    provider: Provider, fake: FakeUpstreamClient, stream: bool
) -> None:
    """input_tokens is the whole prompt with cached tokens inside it, whatever the vendor."""
    model = model_name()
    usage = {"input_tokens": 120, "output_tokens": 9, "cached_input_tokens": 50}
    await fake.ascript(model, [{"text": "hello there", "usage": usage}])
    result = await run(provider, ask(model), stream)
    assert result.usage == Usage(input_tokens=120, output_tokens=9, cached_input_tokens=50)
    assert result.finish_reason == "stop"


async def test_parallel_calls_stream_in_order(provider: Provider, fake: FakeUpstreamClient) -> None:
    """Several tool calls in one streamed turn keep their order, ids and arguments."""
    model = model_name()
    calls = [
        {"name": "get_weather", "arguments": {"city": "Paris"}},
        {"name": "get_weather", "arguments": {"city": "Oslo"}},
    ]
    await fake.ascript(model, [{"tool_calls": calls}])
    result = await run(provider, ask(model), stream=True)
    assert [dict(c.arguments) for c in result.tool_calls] == [{"city": "Paris"}, {"city": "Oslo"}]
    assert len({c.id for c in result.tool_calls}) == 2


RATE_LIMIT_STEPS: dict[str, dict[str, Any]] = {
    "openai": {"status": 429, "headers": {"retry-after": "3"}},
    "anthropic": {"status": 429, "headers": {"retry-after": "3"}},
    "gemini": {"status": 429, "retry_delay_s": 3},
}


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_rate_limit_keeps_the_server_hint(
    provider: Provider, fake: FakeUpstreamClient, stream: bool
) -> None:
    """A 429 becomes RateLimited carrying the vendor's wait hint (header or RetryInfo)."""
    model = model_name()
    await fake.ascript(model, [RATE_LIMIT_STEPS[provider.name]])
    with pytest.raises(pe.RateLimited) as info:
        await run(provider, ask(model), stream)
    assert info.value.retry_after_s == 3.0
    assert info.value.status == 429


async def test_error_event_after_200_is_raised(
    provider: Provider, fake: FakeUpstreamClient
) -> None:
    """An error sent inside a 200 stream surfaces as a retryable provider error."""
    model = model_name()
    await fake.ascript(model, [{"text": "a few words here", "stream_error": {}}])
    with pytest.raises(pe.ProviderError) as info:
        await run(provider, ask(model), stream=True)
    assert info.value.retryable
    expected = {"openai": pe.ServerError, "anthropic": pe.Overloaded, "gemini": pe.ServerError}
    assert type(info.value) is expected[provider.name]


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_malformed_body_is_malformed_response(
    provider: Provider, fake: FakeUpstreamClient, stream: bool
) -> None:
    """A 200 whose body does not parse raises MalformedResponse."""
    model = model_name()
    await fake.ascript(model, [{"malformed": True}])
    with pytest.raises(pe.MalformedResponse):
        await run(provider, ask(model), stream)


async def test_overloaded_maps_per_vendor(provider: Provider, fake: FakeUpstreamClient) -> None:
    """Each vendor's overload status (503 / 529 / 503 UNAVAILABLE) becomes Overloaded."""
    model = model_name()
    status = 529 if provider.name == "anthropic" else 503
    await fake.ascript(model, [{"status": status}])
    with pytest.raises(pe.Overloaded):
        await run(provider, ask(model), stream=False)
