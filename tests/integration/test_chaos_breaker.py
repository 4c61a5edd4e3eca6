"""Chaos (issue #3), circuit breakers: a storm opens the breaker, later calls are refused fast
and typed, a probe closes it or reopens it, slow calls open it, a hung probe cannot wedge it.

One service process with a small breaker (window 4, minimum 4 calls, open 1.5 s, one probe,
probe timeout 1 s, slow above 0.5 s at a 50% slow-call rate), one breaker per model, and one
attempt per call: each task is exactly one upstream call, so window arithmetic is plain.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from app.fake_upstream.client import FakeUpstreamClient
from tests.conftest import unique
from tests.support.api import submit
from tests.support.chaos import (
    assert_settled,
    breaker_snapshot,
    chaos_service,
    events,
    http_client,
    make_agent,
    metric,
    model_name,
    of_type,
    run_task,
    transitions,
    upstream_count,
    wait_all,
    wait_breaker,
)
from tests.support.procs import Proc, wait_until

WINDOW = 4
OPEN_WAIT_S = 1.5
PROBE_TIMEOUT_S = 1.0
SLOW_S = 0.5


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory, fake_upstream: Proc) -> Iterator[Proc]:
    with chaos_service(
        tmp_path_factory.mktemp("chaos-breaker"),
        fake_upstream.url,
        retry_max_attempts=1,
        breaker_window_size=WINDOW,
        breaker_minimum_calls=WINDOW,
        breaker_failure_rate_threshold=50,
        breaker_open_wait_s=OPEN_WAIT_S,
        breaker_half_open_max_calls=1,
        breaker_probe_timeout_s=PROBE_TIMEOUT_S,
        breaker_slow_call_duration_s=SLOW_S,
        breaker_slow_call_rate_threshold=50,
    ) as proc:
        yield proc


@pytest.fixture
def http(svc: Proc) -> Iterator[httpx.Client]:
    with http_client(svc) as client:
        yield client


def fill_window(http: httpx.Client, agent: str, error_type: str) -> None:
    """Run WINDOW tasks on `agent`; each fails with `error_type` (one upstream call each)."""
    ids = [submit(http, agent, f"storm {i}")["id"] for i in range(WINDOW)]
    for task in wait_all(http, ids):
        assert task["state"] == "failed", task
        assert task["error"]["type"] == error_type, task["error"]


def assert_rejected_fast(http: httpx.Client, agent: str, key: str, count: int) -> None:
    """`count` tasks submitted while `key` is open fail at once with a typed `circuit_open`
    error saying when the breaker will probe, and each is reported as breaker.rejected."""
    ids = [submit(http, agent, f"while open {i}")["id"] for i in range(count)]
    for task in wait_all(http, ids):
        assert task["state"] == "failed", task
        assert task["error"]["type"] == "circuit_open", task["error"]
        message = task["error"]["message"]
        assert key in message, message
        probe_in = re.search(r"next probe in (\d+(?:\.\d+)?)s", message)
        assert probe_in and 0.0 <= float(probe_in.group(1)) <= OPEN_WAIT_S, message
        assert task["attempts"] == 0, task
        task_events = events(http, agent=agent, task_id=task["id"])
        assert not of_type(task_events, "llm.request"), "rejected before any provider call"
        [rejected] = of_type(task_events, "breaker.rejected")
        assert rejected["payload"]["breaker"] == key and rejected["payload"]["state"] == "open"
        assert 0.0 <= rejected["payload"]["retry_in_s"] <= OPEN_WAIT_S


def test_529_storm_opens_breaker_rejects_fast_then_probe_closes_it(
    http: httpx.Client, fake: FakeUpstreamClient
) -> None:
    """A 529 storm opens the breaker, then tasks fail fast as circuit_open; a probe closes it."""
    # An Anthropic 529 storm opens the model's breaker once the window fills (event, status,
    # metric); later tasks fail fast with `circuit_open` and never reach upstream; after the open
    # wait a successful half-open probe closes the breaker and traffic flows again.
    model = model_name("claude-haiku-4-5")
    key = f"anthropic/{model}"
    # the storm lasts exactly one window: once open, the breaker sends nothing upstream anyway
    fake.script(model, [{"status": 529, "repeat": WINDOW}])
    agent = unique("storm")
    make_agent(http, agent, "anthropic", model)
    seq0 = http.get("/v1/events", params={"limit": 1}).json()["last_seq"]

    fill_window(http, agent, "overloaded")
    assert_rejected_fast(http, agent, key, 3)
    assert upstream_count(fake, model) == WINDOW, "rejected tasks must not reach upstream"

    assert transitions(http, key, seq0) == [("closed", "open", "failure_rate")]
    snapshot = breaker_snapshot(http, "anthropic", key)
    assert snapshot["state"] == "open" and snapshot["failure_rate"] == 100.0
    assert snapshot["rejected_calls"] == 3
    assert metric(http, "bigthree_circuit_state", breaker=key) == 1.0

    fake.script(model, [{"text": "recovered"}])
    wait_breaker(http, "anthropic", key, "half_open", timeout=OPEN_WAIT_S + 5)
    probe = run_task(http, agent, "probe")
    assert (probe["state"], probe["result"]) == ("succeeded", "recovered")
    assert transitions(http, key, seq0) == [
        ("closed", "open", "failure_rate"),
        ("open", "half_open", "open_wait_elapsed"),
        ("half_open", "closed", "probes_healthy"),
    ]
    assert breaker_snapshot(http, "anthropic", key)["state"] == "closed"
    assert metric(http, "bigthree_circuit_state", breaker=key) == 0.0
    after = run_task(http, agent, "business as usual")
    assert after["state"] == "succeeded"
    assert upstream_count(fake, model) == WINDOW + 2
    assert_settled(http, [agent])


def test_failed_probe_reopens_breaker(http: httpx.Client, fake: FakeUpstreamClient) -> None:
    """When the half-open probe fails too, the breaker opens again and keeps refusing calls."""
    model = model_name("claude-haiku-4-5")
    key = f"anthropic/{model}"
    fake.script(model, [{"status": 529, "repeat": WINDOW + 1}])
    agent = unique("reopen")
    make_agent(http, agent, "anthropic", model)
    seq0 = http.get("/v1/events", params={"limit": 1}).json()["last_seq"]

    fill_window(http, agent, "overloaded")
    wait_breaker(http, "anthropic", key, "half_open", timeout=OPEN_WAIT_S + 5)
    probe = run_task(http, agent, "probe")
    assert probe["state"] == "failed" and probe["error"]["type"] == "overloaded"
    assert transitions(http, key, seq0) == [
        ("closed", "open", "failure_rate"),
        ("open", "half_open", "open_wait_elapsed"),
        ("half_open", "open", "failure_rate"),
    ]
    snapshot = breaker_snapshot(http, "anthropic", key)
    assert snapshot["state"] == "open" and snapshot["next_probe_in_s"] > 0
    assert metric(http, "bigthree_circuit_state", breaker=key) == 1.0
    assert_rejected_fast(http, agent, key, 1)
    assert upstream_count(fake, model) == WINDOW + 1
    assert_settled(http, [agent])


def test_slow_calls_open_breaker_on_slow_call_rate(
    http: httpx.Client, fake: FakeUpstreamClient
) -> None:
    """Calls slower than the slow-call duration open the breaker on the slow-call rate."""
    # Calls that succeed but take longer than the slow-call duration open the breaker on the slow-
    # call rate (failure rate 0), and the next call is refused.
    model = model_name("gpt-4o-mini")
    key = f"openai/{model}"
    fake.script(model, [{"latency_s": SLOW_S + 0.3, "text": "slow but fine", "repeat": WINDOW}])
    agents = [unique("slow") for _ in range(WINDOW)]
    for agent in agents:
        make_agent(http, agent, "openai", model)
    seq0 = http.get("/v1/events", params={"limit": 1}).json()["last_seq"]

    ids = [submit(http, agent, "take your time")["id"] for agent in agents]
    for task in wait_all(http, ids):
        assert (task["state"], task["result"]) == ("succeeded", "slow but fine")
    assert transitions(http, key, seq0) == [("closed", "open", "slow_call_rate")]
    snapshot = breaker_snapshot(http, "openai", key)
    assert snapshot["state"] == "open"
    assert (snapshot["slow_rate"], snapshot["failure_rate"]) == (100.0, 0.0)
    assert metric(http, "bigthree_circuit_state", breaker=key) == 1.0
    assert_rejected_fast(http, agents[0], key, 1)
    assert upstream_count(fake, model) == WINDOW
    assert_settled(http, agents)


def test_hung_probe_does_not_wedge_half_open(http: httpx.Client, fake: FakeUpstreamClient) -> None:
    """A hung half-open probe times out, so a later probe can close the breaker meanwhile."""
    # A half-open probe that hangs is counted as failed after the probe timeout (the breaker
    # reopens), so after the open wait another probe is let through and closes the breaker while the
    # hung task is still running; the hung task later ends `timed_out` on its own deadline and its
    # late outcome leaves the breaker closed.
    model = model_name("gpt-4o-mini")
    key = f"openai/{model}"
    fake.script(model, [{"status": 500, "repeat": WINDOW}, {"latency_s": 60}])
    hung_agent, next_agent = unique("hung"), unique("next-probe")
    make_agent(http, hung_agent, "openai", model)
    make_agent(http, next_agent, "openai", model)
    seq0 = http.get("/v1/events", params={"limit": 1}).json()["last_seq"]

    fill_window(http, hung_agent, "server_error")
    wait_breaker(http, "openai", key, "half_open", timeout=OPEN_WAIT_S + 5)
    hung = submit(http, hung_agent, "this probe hangs", timeout_s=5)
    wait_until(lambda: upstream_count(fake, model) == WINDOW + 1, what="the probe to be in flight")
    assert breaker_snapshot(http, "openai", key)["probes_in_flight"] == 1

    wait_breaker(http, "openai", key, "open", timeout=PROBE_TIMEOUT_S + 5)
    wait_breaker(http, "openai", key, "half_open", timeout=OPEN_WAIT_S + 5)
    fake.script(model, [{"text": "second probe"}])
    second = run_task(http, next_agent, "second probe")
    assert (second["state"], second["result"]) == ("succeeded", "second probe")
    assert http.get(f"/v1/tasks/{hung['id']}").json()["state"] == "running"
    assert breaker_snapshot(http, "openai", key)["state"] == "closed"

    [hung_done] = wait_all(http, [hung["id"]], timeout=10)
    assert hung_done["state"] == "timed_out" and hung_done["error"]["type"] == "timed_out"
    assert transitions(http, key, seq0) == [
        ("closed", "open", "failure_rate"),
        ("open", "half_open", "open_wait_elapsed"),
        ("half_open", "open", "failure_rate"),
        ("open", "half_open", "open_wait_elapsed"),
        ("half_open", "closed", "probes_healthy"),
    ]
    snapshot = breaker_snapshot(http, "openai", key)
    assert snapshot["state"] == "closed" and snapshot["failed_calls"] == 0
    assert metric(http, "bigthree_circuit_state", breaker=key) == 0.0
    assert upstream_count(fake, model) == WINDOW + 2
    assert_settled(http, [hung_agent, next_agent])


def test_forced_open_provider_refuses_every_model_until_reset(
    http: httpx.Client, fake: FakeUpstreamClient
) -> None:
    """force_open on a provider refuses every model, even ones first used later, until reset."""
    # `force_open` on a provider refuses calls to each of its models, also one first used after the
    # command, with `circuit_open` and nothing sent upstream; `reset` lets them through.
    seen, fresh = model_name("gemini-2.5-flash"), model_name("gemini-2.5-flash")
    seen_agent, fresh_agent = unique("forced-seen"), unique("forced-fresh")
    make_agent(http, seen_agent, "gemini", seen)
    make_agent(http, fresh_agent, "gemini", fresh)
    assert run_task(http, seen_agent)["state"] == "succeeded"

    forced = http.post("/v1/providers/gemini/breaker", json={"action": "force_open"})
    assert forced.status_code == 200
    assert [b["state"] for b in forced.json()["breakers"]] == ["forced_open"]
    for agent, model in ((seen_agent, seen), (fresh_agent, fresh)):
        task = run_task(http, agent, "while forced open")
        assert task["state"] == "failed" and task["error"]["type"] == "circuit_open", task
        assert breaker_snapshot(http, "gemini", f"gemini/{model}")["state"] == "forced_open"
        assert metric(http, "bigthree_circuit_state", breaker=f"gemini/{model}") == 3.0
    assert (upstream_count(fake, seen), upstream_count(fake, fresh)) == (1, 0)

    reset = http.post("/v1/providers/gemini/breaker", json={"action": "reset"})
    assert {b["state"] for b in reset.json()["breakers"]} == {"closed"}
    for agent in (seen_agent, fresh_agent):
        assert run_task(http, agent, "after reset")["state"] == "succeeded"
    assert (upstream_count(fake, seen), upstream_count(fake, fresh)) == (2, 1)
    assert_settled(http, [seen_agent, fresh_agent])
