"""Chaos (issue #3), routes: a dead primary falls back to the next provider, an
OpenAI-compatible server needs no key, and what was spent is priced by the price table.

One service process for the module, set up as a team running a local OpenAI-compatible
server would: `OPENAI_BASE_URL` points at a non-default URL (the fake) and `OPENAI_API_KEY`
is empty; Anthropic and Gemini have keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

import httpx
import pytest

from app.fake_upstream.client import FakeUpstreamClient
from tests.conftest import unique
from tests.support.chaos import (
    assert_settled,
    breaker_snapshot,
    chaos_service,
    events,
    http_client,
    make_agent,
    metric,
    metric_sum,
    model_name,
    of_type,
    run_task,
    upstream_count,
)
from tests.support.procs import Proc


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory, fake_upstream: Proc) -> Iterator[Proc]:
    with chaos_service(
        tmp_path_factory.mktemp("chaos-routes"), fake_upstream.url, OPENAI_API_KEY=""
    ) as proc:
        yield proc


@pytest.fixture
def http(svc: Proc) -> Iterator[httpx.Client]:
    with http_client(svc) as client:
        yield client


@pytest.mark.parametrize("status", [503, 529])
def test_dead_primary_falls_back_and_records_it(
    http: httpx.Client, fake: FakeUpstreamClient, status: int
) -> None:
    """With the OpenAI primary down, the task succeeds on the Anthropic fallback, recorded."""
    # With the OpenAI primary answering 503/529 forever, its retries run out, the task hops to the
    # Anthropic fallback and succeeds with its answer; the hop is an llm.fallback event and counts
    # in bigthree_llm_fallbacks_total{from_provider="openai",to_provider="anthropic"}.
    primary, backup = model_name("gpt-4o-mini"), model_name("claude-haiku-4-5")
    fake.script(primary, [{"status": status, "repeat": -1}])
    fake.script(backup, [{"text": "answered by the fallback"}])
    labels = {"from_provider": "openai", "to_provider": "anthropic"}
    hops_before = metric(http, "bigthree_llm_fallbacks_total", **labels) or 0.0
    agent = unique("fallback")
    make_agent(
        http, agent, "openai", primary, fallbacks=[{"provider": "anthropic", "model": backup}]
    )
    task = run_task(http, agent)
    assert (task["state"], task["result"]) == ("succeeded", "answered by the fallback")
    assert task["attempts"] == 3 + 1  # the primary's three attempts, then the fallback's one
    assert (upstream_count(fake, primary), upstream_count(fake, backup)) == (3, 1)

    evs = events(http, agent=agent, task_id=task["id"])
    [hop] = of_type(evs, "llm.fallback")
    assert hop["payload"]["from"] == f"openai/{primary}"
    assert hop["payload"]["to"] == f"anthropic/{backup}"
    assert hop["payload"]["reason"] == "overloaded"
    [response] = of_type(evs, "llm.response")
    assert (response["payload"]["provider"], response["payload"]["model"]) == ("anthropic", backup)
    assert hop["seq"] < response["seq"]
    assert metric(http, "bigthree_llm_fallbacks_total", **labels) == hops_before + 1
    assert_settled(http, [agent])


def test_open_primary_breaker_hops_straight_to_fallback(
    http: httpx.Client, fake: FakeUpstreamClient
) -> None:
    """Once the dead primary's breaker opens, tasks hop to the fallback without calling it."""
    primary, backup = model_name("gpt-4o-mini"), model_name("claude-haiku-4-5")
    key = f"openai/{primary}"
    fake.script(primary, [{"status": 503, "repeat": -1}])
    agent = unique("fallback-open")
    make_agent(
        http, agent, "openai", primary, fallbacks=[{"provider": "anthropic", "model": backup}]
    )
    snapshot: dict[str, Any] = {}
    tasks = []
    # default breaker: 10 calls at >= 50% failures open it; each task spends 3 attempts
    while snapshot.get("state") != "open":
        assert len(tasks) < 5, f"the primary's breaker never opened: {snapshot}"
        tasks.append(run_task(http, agent, "primary first"))
        snapshot = breaker_snapshot(http, "openai", key)
    primary_calls = upstream_count(fake, primary)
    task = run_task(http, agent, "primary is open")
    assert (task["state"], task["result"]) == ("succeeded", "echo: primary is open")
    assert task["attempts"] == 1 and upstream_count(fake, primary) == primary_calls
    [hop] = of_type(events(http, agent=agent, task_id=task["id"]), "llm.fallback")
    assert hop["payload"]["reason"] == "circuit_open"
    assert all(t["state"] == "succeeded" for t in tasks)
    assert_settled(http, [agent])


def test_openai_compatible_server_streams_without_a_key(
    http: httpx.Client, fake: FakeUpstreamClient
) -> None:
    """An OpenAI-compatible server at a custom base URL streams with no API key sent."""
    model = model_name("llama3.2")
    text = "local models stream too, one word at a time, with no key at all"
    fake.script(model, [{"text": text, "drip_s": 0.03}])
    agent = unique("compat")
    make_agent(http, agent, "openai", model, stream=True)
    task = run_task(http, agent)
    assert (task["state"], task["result"]) == ("succeeded", text)
    deltas = of_type(events(http, agent=agent, task_id=task["id"]), "llm.delta")
    assert len(deltas) >= 2 and "".join(d["payload"]["text"] for d in deltas) == text
    [request] = fake.requests(model=model)
    assert "authorization" not in request.headers
    assert request.body["stream"] is True
    status = {p["name"]: p for p in http.get("/v1/providers").json()["providers"]}
    assert status["openai"]["configured"] is True
    assert task["cost_usd"] == 0.0  # an unpriced local model costs nothing
    assert_settled(http, [agent])


def _price_table() -> dict[str, dict[str, dict[str, float]]]:
    raw = resources.files("app.providers").joinpath("prices.json").read_text()
    table: dict[str, dict[str, dict[str, float]]] = json.loads(raw)
    return table


def _expected_cost(price: dict[str, float], usage: dict[str, int]) -> float:
    cached = usage["cached_input_tokens"]
    fresh = usage["input_tokens"] - cached
    cached_price = price.get("cached_input", price["input"])
    return (
        fresh * price["input"] + cached * cached_price + usage["output_tokens"] * price["output"]
    ) / 1_000_000


def _usage(input_tokens: int, output_tokens: int, cached: int) -> dict[str, int]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cached_input_tokens": cached,
    }


COSTED = [
    ("openai", "gpt-4o-mini", _usage(12_000, 3_000, 2_000)),
    ("anthropic", "claude-haiku-4-5", _usage(8_000, 1_500, 1_000)),
    ("gemini", "gemini-2.5-flash", _usage(20_000, 4_000, 0)),
]


def test_costs_match_the_price_table(http: httpx.Client, fake: FakeUpstreamClient) -> None:
    """/v1/costs, task costs and bigthree_llm_cost_usd_total equal usage x the price table."""
    prices = _price_table()
    before = http.get("/v1/costs").json()
    expected: dict[str, dict[str, Any]] = {}
    agents = []
    for provider, family, usage in COSTED:
        model = model_name(family)
        fake.script(model, [{"text": "priced answer", "usage": usage, "repeat": 2}])
        agent = unique(f"cost-{provider}")
        agents.append(agent)
        make_agent(http, agent, provider, model)
        one = _expected_cost(prices[provider][family], usage)
        for _ in range(2):
            task = run_task(http, agent, "price me")
            assert task["state"] == "succeeded", task
            assert task["cost_usd"] == pytest.approx(one, rel=1e-9)
            assert task["usage"]["input_tokens"] == usage["input_tokens"]
            assert task["usage"]["output_tokens"] == usage["output_tokens"]
            assert task["usage"]["cached_input_tokens"] == usage["cached_input_tokens"]
        expected[model] = {"provider": provider, "agent": agent, "cost": 2 * one, "usage": usage}

    report = http.get("/v1/costs").json()
    by_model = {row["model"]: row for row in report["by_model"]}
    by_agent = {row["agent"]: row for row in report["by_agent"]}
    for model, want in expected.items():
        row = by_model[model]
        assert row["provider"] == want["provider"] and row["calls"] == 2
        assert row["input_tokens"] == 2 * want["usage"]["input_tokens"]
        assert row["output_tokens"] == 2 * want["usage"]["output_tokens"]
        assert row["cached_input_tokens"] == 2 * want["usage"]["cached_input_tokens"]
        assert row["cost_usd"] == pytest.approx(want["cost"], rel=1e-9)
        assert by_agent[want["agent"]]["cost_usd"] == pytest.approx(want["cost"], rel=1e-9)
        agent_view = http.get(f"/v1/agents/{want['agent']}").json()
        assert agent_view["cost_usd"] == pytest.approx(want["cost"], rel=1e-9)
        exported = metric(
            http, "bigthree_llm_cost_usd_total", provider=want["provider"], model=model
        )
        assert exported == pytest.approx(want["cost"], rel=1e-9)
    added = sum(w["cost"] for w in expected.values())
    assert report["total_cost_usd"] == pytest.approx(before["total_cost_usd"] + added, rel=1e-9)
    assert report["total_cost_usd"] == pytest.approx(
        sum(row["cost_usd"] for row in report["by_model"]), rel=1e-9
    )
    assert metric_sum(http, "bigthree_llm_cost_usd_total") == pytest.approx(
        report["total_cost_usd"], rel=1e-9
    )
    assert_settled(http, agents)
