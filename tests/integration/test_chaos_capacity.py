"""Chaos (issue #3), capacity: a full bulkhead refuses fast, and retries under a full outage
stay within the retry budget instead of multiplying the load.

Each test starts its own service process: the bulkhead limit and the budget are per provider
and process-wide, so they cannot share one with other tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.config import Settings
from app.fake_upstream.client import FakeUpstreamClient
from tests.conftest import unique
from tests.support.api import submit
from tests.support.chaos import (
    Stopwatch,
    assert_settled,
    chaos_service,
    events,
    http_client,
    make_agent,
    metric,
    metric_sum,
    model_name,
    of_type,
    provider_status,
    run_task,
    upstream_count,
    wait_all,
)
from tests.support.procs import Proc, wait_until

RecordProperty = Callable[[str, object], None]

OUTAGE_AGENTS = 12
OUTAGE_TASKS_PER_AGENT = 5
OUTAGE_ATTEMPTS = 5


def _default(name: str) -> float:
    value = Settings.model_fields[name].default
    assert isinstance(value, int | float)
    return float(value)


def test_full_bulkhead_rejects_fast_with_typed_error(
    tmp_path: Path, fake_upstream: Proc, fake: FakeUpstreamClient
) -> None:
    """A full bulkhead fails another task at once as bulkhead_full; a freed slot serves again."""
    # With one provider slot taken by a slow call, another agent's task on that provider fails at
    # once with `bulkhead_full` (event + metric, nothing sent upstream); once the slow task is
    # cancelled the slot is free and the next task succeeds.
    slow_model, other_model = model_name("gpt-4o-mini"), model_name("gpt-4o-mini")
    fake.script(slow_model, [{"latency_s": 60}])
    with (
        chaos_service(tmp_path, fake_upstream.url, bulkhead_max_concurrent=1) as svc,
        http_client(svc) as http,
    ):
        slow_agent, other_agent = unique("hog"), unique("squeezed")
        make_agent(http, slow_agent, "openai", slow_model)
        make_agent(http, other_agent, "openai", other_model)

        slow = submit(http, slow_agent, "take the only slot")
        wait_until(lambda: upstream_count(fake, slow_model) == 1, what="the slow call in flight")
        assert provider_status(http, "openai")["bulkhead"] == {
            "limit": 1,
            "in_use": 1,
            "waiting": 0,
        }
        assert metric(http, "bigthree_bulkhead_in_use", provider="openai") == 1.0

        rejected = run_task(http, other_agent, "no room")
        assert rejected["state"] == "failed", rejected
        assert rejected["error"]["type"] == "bulkhead_full"
        assert "bulkhead 'openai' is full" in rejected["error"]["message"]
        # refused without waiting: no attempt, no provider request, no retry
        assert rejected["attempts"] == 0
        assert upstream_count(fake, other_model) == 0
        task_events = events(http, agent=other_agent, task_id=rejected["id"])
        assert not of_type(task_events, "llm.request") and not of_type(task_events, "llm.retry")
        [event] = of_type(
            events(http, agent=other_agent, task_id=rejected["id"]), "bulkhead.rejected"
        )
        assert event["payload"]["provider"] == "openai"
        assert (event["payload"]["limit"], event["payload"]["in_use"]) == (1, 1)
        assert metric(http, "bigthree_bulkhead_rejections_total", provider="openai") == 1.0
        assert http.get(f"/v1/tasks/{slow['id']}").json()["state"] == "running"

        cancelled = http.post(f"/v1/tasks/{slow['id']}/cancel").json()
        assert cancelled["state"] == "cancelled"
        wait_until(
            lambda: provider_status(http, "openai")["bulkhead"]["in_use"] == 0,
            what="the slot to be released",
        )
        assert metric(http, "bigthree_bulkhead_in_use", provider="openai") == 0.0
        after = run_task(http, other_agent, "room now")
        assert after["state"] == "succeeded", after
        assert metric(http, "bigthree_bulkhead_rejections_total", provider="openai") == 1.0
        assert_settled(http, [slow_agent, other_agent])


@dataclass(frozen=True)
class Outage:
    tasks: list[dict[str, Any]]
    upstream: int
    """Requests the fake received: every attempt of every task."""
    elapsed_s: float
    """From the first submission until the last task finished."""
    refusals: float
    """bigthree_llm_retry_budget_exhausted_total: retries the budget refused."""

    @property
    def ratio(self) -> float:
        return self.upstream / len(self.tasks)


def run_outage(
    tmp_path: Path, fake_upstream: Proc, fake: FakeUpstreamClient, **budget: object
) -> Outage:
    """60 tasks (12 agents x 5, at once) against an always-500 model with 5 attempts per call
    and the breaker off, so that only the retry budget limits retries."""
    model = model_name("gpt-4o-mini")
    fake.script(model, [{"status": 500, "repeat": -1}])
    settings = {"retry_max_attempts": OUTAGE_ATTEMPTS, "breaker_enabled": False, **budget}
    with chaos_service(tmp_path, fake_upstream.url, **settings) as svc, http_client(svc) as http:
        agents = [unique("outage") for _ in range(OUTAGE_AGENTS)]
        for agent in agents:
            make_agent(http, agent, "openai", model)
        clock = Stopwatch()
        ids = [
            submit(http, agent, f"try {i}")["id"]
            for i in range(OUTAGE_TASKS_PER_AGENT)
            for agent in agents
        ]
        tasks = wait_all(http, ids, timeout=60)
        elapsed = clock.elapsed
        for task in tasks:
            assert task["state"] == "failed" and task["error"]["type"] == "server_error", task
        upstream = upstream_count(fake, model)
        assert upstream == sum(t["attempts"] for t in tasks), "every attempt is accounted for"
        refusals = metric_sum(http, "bigthree_llm_retry_budget_exhausted_total", provider="openai")
        refusal_events = events(http, type="llm.retry_budget_exhausted")
        assert len(refusal_events) == refusals
        assert {e["task_id"] for e in refusal_events} <= set(ids)
        assert_settled(http, agents)
    return Outage(tasks, upstream, elapsed, refusals)


def test_retry_amplification_under_full_outage_stays_within_budget(
    tmp_path: Path, fake_upstream: Proc, fake: FakeUpstreamClient, record_property: RecordProperty
) -> None:
    """In a full outage the default retry budget keeps upstream requests per task near 1.2."""
    # Under a full outage with 5 attempts allowed per call, the default retry budget (20% of
    # requests + 0.5 retries/s over 10 s) keeps upstream requests per task near 1.2, not 5.
    ratio = _default("retry_budget_ratio")
    window_s = _default("retry_budget_window_s")
    floor_per_s = _default("retry_budget_min_per_s")
    outage = run_outage(
        tmp_path,
        fake_upstream,
        fake,
        retry_budget_ratio=ratio,
        retry_budget_window_s=window_s,
        retry_budget_min_per_s=floor_per_s,
    )
    n = len(outage.tasks)
    # The budget counts the last window_s in buckets of window_s / 10, so it always sees at
    # least the last 0.9 * window_s: a run of that length makes at most
    # floor(ratio * n + floor_per_s * window_s) retries (a retry needs a whole token).
    spans = max(1, math.ceil(outage.elapsed_s / (0.9 * window_s)))
    allowed = n + spans * math.floor(ratio * n + floor_per_s * window_s + 1e-9)
    bound = allowed / n
    print(
        f"\nretry amplification (default budget): {outage.ratio:.3f} upstream requests/task "
        f"(bound {bound:.3f}); {outage.upstream} requests for {n} tasks in "
        f"{outage.elapsed_s:.2f}s; {outage.refusals:g} retries refused by the budget"
    )
    record_property("retry_amplification_ratio", round(outage.ratio, 4))
    record_property("retry_amplification_bound", round(bound, 4))
    assert outage.upstream <= allowed
    assert outage.ratio < OUTAGE_ATTEMPTS / 2, "the budget must cut retries well below 5x"
    assert outage.refusals > 0


def test_without_effective_budget_outage_multiplies_load_by_max_attempts(
    tmp_path: Path, fake_upstream: Proc, fake: FakeUpstreamClient, record_property: RecordProperty
) -> None:
    """Contrast: with a huge budget ratio the same outage costs all 5 attempts per task."""
    outage = run_outage(tmp_path, fake_upstream, fake, retry_budget_ratio=10)
    print(
        f"\nretry amplification (budget ratio 10): {outage.ratio:.3f} upstream requests/task; "
        f"{outage.upstream} requests for {len(outage.tasks)} tasks in {outage.elapsed_s:.2f}s"
    )
    record_property("retry_amplification_ratio_unbudgeted", round(outage.ratio, 4))
    assert outage.ratio == float(OUTAGE_ATTEMPTS)
    assert all(t["attempts"] == OUTAGE_ATTEMPTS for t in outage.tasks)
    assert outage.refusals == 0
