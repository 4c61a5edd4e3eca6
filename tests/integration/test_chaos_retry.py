"""Chaos (issue #3), retries: server wait hints, transient failures, broken streams, quota,
and streaming from every vendor — as a user sees them through the API, events and metrics.

One service process for the module (per-model breakers, fast backoff, a retry-budget floor
high enough that the budget never decides an outcome here) and the session's fake upstream.
Each test scripts its own model, so tests sharing the process do not interfere.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.fake_upstream.client import FakeUpstreamClient
from tests.conftest import unique
from tests.support.api import submit
from tests.support.chaos import (
    assert_settled,
    chaos_service,
    events,
    http_client,
    make_agent,
    model_name,
    of_type,
    run_task,
    upstream_count,
    wait_all,
)
from tests.support.procs import Proc

PRICED = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash"}
# event timestamps come from one process clock; asyncio may wake a timer ~1 ms early
CLOCK_SLACK_S = 0.02


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory, fake_upstream: Proc) -> Iterator[Proc]:
    with chaos_service(tmp_path_factory.mktemp("chaos-retry"), fake_upstream.url) as proc:
        yield proc


@pytest.fixture
def http(svc: Proc) -> Iterator[httpx.Client]:
    with http_client(svc) as client:
        yield client


def task_events(http: httpx.Client, task: dict[str, Any]) -> list[dict[str, Any]]:
    return events(http, agent=task["agent"], task_id=task["id"])


def assert_hint_honoured(
    http: httpx.Client, fake: FakeUpstreamClient, task: dict[str, Any], model: str, hint_s: float
) -> None:
    """The retry after a hinted failure waited at least `hint_s` (service events and the
    fake's own receive times agree), and not absurdly longer."""
    evs = task_events(http, task)
    error = next(e for e in of_type(evs, "llm.error") if e["payload"]["type"] == "rate_limited")
    retry = of_type(evs, "llm.retry")[0]
    second = next(e for e in of_type(evs, "llm.request") if e["payload"]["attempt"] == 2)
    assert retry["payload"]["wait_s"] == pytest.approx(hint_s, abs=0.001)
    assert retry["payload"]["reason"] == "rate_limited"
    gap = second["ts"] - error["ts"]
    assert hint_s - CLOCK_SLACK_S <= gap < hint_s + 2.0, gap
    received = [r.received_at for r in fake.requests(model=model)]
    assert len(received) == 2
    assert received[1] - received[0] >= hint_s - CLOCK_SLACK_S


def test_429_retry_after_seconds_is_honoured(http: httpx.Client, fake: FakeUpstreamClient) -> None:
    """A 429 with `retry-after: 1` is retried no sooner than 1 s later; the task succeeds."""
    model = model_name("gpt-4o-mini")
    fake.script(model, [{"status": 429, "headers": {"retry-after": "1"}}, {"text": "waited"}])
    agent = unique("ra-s")
    make_agent(http, agent, "openai", model)
    task = run_task(http, agent)
    assert (task["state"], task["result"], task["attempts"]) == ("succeeded", "waited", 2)
    assert_hint_honoured(http, fake, task, model, 1.0)
    assert_settled(http, [agent])


def test_429_retry_after_ms_is_honoured(http: httpx.Client, fake: FakeUpstreamClient) -> None:
    """A 429 with `retry-after-ms: 400` is retried after 0.4 s, not after backoff."""
    model = model_name("gpt-4o-mini")
    fake.script(model, [{"status": 429, "headers": {"retry-after-ms": "400"}}, {"text": "ok"}])
    agent = unique("ra-ms")
    make_agent(http, agent, "openai", model)
    task = run_task(http, agent)
    assert (task["state"], task["result"], task["attempts"]) == ("succeeded", "ok", 2)
    assert_hint_honoured(http, fake, task, model, 0.4)
    assert_settled(http, [agent])


def test_gemini_retry_info_delay_is_honoured(http: httpx.Client, fake: FakeUpstreamClient) -> None:
    """A Gemini 429 with RetryInfo retryDelay 0.7s is retried 0.7 s later and succeeds."""
    model = model_name("gemini-2.5-flash")
    fake.script(model, [{"status": 429, "retry_delay_s": 0.7}, {"text": "gemini ok"}])
    agent = unique("ra-gem")
    make_agent(http, agent, "gemini", model)
    task = run_task(http, agent)
    assert (task["state"], task["result"], task["attempts"]) == ("succeeded", "gemini ok", 2)
    assert_hint_honoured(http, fake, task, model, 0.7)
    assert_settled(http, [agent])


def test_500_then_success_takes_two_attempts(http: httpx.Client, fake: FakeUpstreamClient) -> None:
    """One 500 is retried with backoff and the task succeeds on attempt 2."""
    model = model_name("gpt-4o-mini")
    fake.script(model, [{"status": 500}, {"text": "second time lucky"}])
    agent = unique("r500")
    make_agent(http, agent, "openai", model)
    task = run_task(http, agent)
    assert (task["state"], task["result"], task["attempts"]) == (
        "succeeded",
        "second time lucky",
        2,
    )
    assert task["error"] is None
    evs = task_events(http, task)
    [error] = of_type(evs, "llm.error")
    assert (error["payload"]["type"], error["payload"]["status"]) == ("server_error", 500)
    [retry] = of_type(evs, "llm.retry")
    assert retry["payload"]["reason"] == "server_error" and retry["payload"]["wait_s"] <= 0.05
    assert [e["payload"]["attempt"] for e in of_type(evs, "llm.request")] == [1, 2]
    assert upstream_count(fake, model) == 2
    assert of_type(evs, "task.succeeded")
    assert_settled(http, [agent])


FAULTS = [
    pytest.param("openai", True, {"reset_mid_body": True}, "connection", id="openai-stream-reset"),
    pytest.param("openai", False, {"reset_mid_body": True}, "connection", id="openai-body-reset"),
    pytest.param(
        "openai", True, {"malformed": True}, "malformed_response", id="openai-stream-malformed"
    ),
    pytest.param(
        "openai", False, {"malformed": True}, "malformed_response", id="openai-json-malformed"
    ),
    pytest.param(
        "anthropic",
        True,
        {"stream_error": {"type": "overloaded_error", "message": "Overloaded"}},
        "overloaded",
        id="anthropic-stream-error-after-200",
    ),
    pytest.param("gemini", True, {"reset_mid_body": True}, "connection", id="gemini-stream-reset"),
]


@pytest.mark.parametrize(("provider", "stream", "fault", "reason"), FAULTS)
def test_broken_response_is_retried(
    http: httpx.Client,
    fake: FakeUpstreamClient,
    provider: str,
    stream: bool,
    fault: dict[str, Any],
    reason: str,
) -> None:
    """A cut, unparseable or mid-stream-errored response is retried; the task succeeds."""
    # A connection cut mid-body, an unparseable body or an error event inside a 200 stream is a
    # retryable failure: retried once, the task succeeds with the whole answer.
    model = model_name(PRICED[provider])
    text = "a whole answer after a broken one"
    fake.script(model, [fault, {"text": text}])
    agent = unique("broken")
    make_agent(http, agent, provider, model, stream=stream)
    task = run_task(http, agent)
    assert (task["state"], task["result"], task["attempts"]) == ("succeeded", text, 2)
    evs = task_events(http, task)
    [error] = of_type(evs, "llm.error")
    assert error["payload"]["type"] == reason and error["payload"]["retryable"] is True
    assert [e["payload"]["stream"] for e in of_type(evs, "llm.request")] == [stream, stream]
    assert upstream_count(fake, model) == 2
    if stream:
        deltas = [e["payload"] for e in of_type(evs, "llm.delta")]
        assert "".join(d["text"] for d in deltas if d["attempt"] == 2) == text
    assert_settled(http, [agent])


def test_insufficient_quota_is_not_retried(http: httpx.Client, fake: FakeUpstreamClient) -> None:
    """`insufficient_quota` fails the task at once as quota_exhausted: 1 request, no retry."""
    # OpenAI `insufficient_quota` (a 429 that waiting cannot fix) fails the task at once with a
    # clear `quota_exhausted` error naming provider, status and request id: 1 upstream request.
    model = model_name("gpt-4o-mini")
    quota = {
        "status": 429,
        "error": {
            "type": "insufficient_quota",
            "code": "insufficient_quota",
            "message": "You exceeded your current quota, please check your plan and billing.",
        },
        "repeat": -1,
    }
    fake.script(model, [quota])
    agent = unique("quota")
    make_agent(http, agent, "openai", model)
    task = run_task(http, agent)
    assert task["state"] == "failed" and task["attempts"] == 1
    error = task["error"]
    assert error["type"] == "quota_exhausted"
    assert "exceeded your current quota" in error["message"]
    details = error["details"]
    assert (details["provider"], details["status"], details["retryable"]) == ("openai", 429, False)
    assert details["request_id"]
    assert upstream_count(fake, model) == 1
    evs = task_events(http, task)
    assert not of_type(evs, "llm.retry")
    assert of_type(evs, "task.failed")[0]["payload"]["error"]["type"] == "quota_exhausted"
    assert_settled(http, [agent])


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_streaming_chat_deltas_add_up_to_the_result(
    http: httpx.Client, fake: FakeUpstreamClient, provider: str
) -> None:
    """A streaming agent's llm.delta events arrive incrementally and add up to the result."""
    model = model_name(PRICED[provider])
    text = "the quick brown fox jumps over the lazy dog, twice: quick brown fox, lazy dog"
    fake.script(model, [{"text": text, "drip_s": 0.03}])
    agent = unique(f"stream-{provider}")
    make_agent(http, agent, provider, model, stream=True)
    task = run_task(http, agent)
    assert (task["state"], task["result"]) == ("succeeded", text)
    deltas = of_type(task_events(http, task), "llm.delta")
    assert len(deltas) >= 2, "text should arrive incrementally"
    assert "".join(d["payload"]["text"] for d in deltas) == text
    [request] = fake.requests(model=model)
    streamed = "streamGenerateContent" in request.path or request.body.get("stream") is True
    assert streamed, request
    assert_settled(http, [agent])


def test_hung_upstream_ends_every_task_timed_out_at_its_deadline(
    http: httpx.Client, fake: FakeUpstreamClient
) -> None:
    """Tasks whose provider call hangs all end `timed_out` at their own deadline, none `failed`."""
    model = model_name("gpt-4o-mini")
    fake.script(model, [{"latency_s": 60, "repeat": -1}])
    agents = [unique("hang") for _ in range(8)]
    for agent in agents:
        make_agent(http, agent, "openai", model)
    ids = [submit(http, agent, "never answered", timeout_s=0.5)["id"] for agent in agents]
    for task in wait_all(http, ids):
        assert (task["state"], task["error"]["type"]) == ("timed_out", "timed_out"), task
        assert "0.5s deadline" in task["error"]["message"]
        assert task["attempts"] == 1, task
        # the one attempt was bounded by the task's own deadline, not by a longer timeout
        [request] = of_type(events(http, agent=task["agent"], task_id=task["id"]), "llm.request")
        assert 0 < request["payload"]["timeout_s"] <= 0.5, request
    assert upstream_count(fake, model) == len(agents), "no retry once the deadline is spent"
    assert_settled(http, agents)
