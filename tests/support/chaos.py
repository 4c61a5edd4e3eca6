"""Helpers for the chaos suite: tuned service processes, events, metrics, breakers, settling.

Everything here reads what a user can read (REST, /metrics, the fake's request log); nothing
sleeps to synchronise: waits poll with a deadline.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.fake_upstream.client import FakeUpstreamClient
from tests.support.api import FINISHED, submit
from tests.support.procs import Proc, start_service, wait_until

# Settings every chaos service shares: fast backoff, and a retry-budget floor so high that
# the budget never decides a test's outcome (the budget has its own tests, with defaults).
BASE_SETTINGS: dict[str, object] = {
    "retry_initial_backoff_s": 0.01,
    "retry_max_backoff_s": 0.05,
    "retry_budget_min_per_s": 1000,
    "breaker_per_model": True,
}


def model_name(prefix: str) -> str:
    """A model name no other test uses (the fake scripts per model); keeps a priced prefix."""
    return f"{prefix}-chaos-{uuid.uuid4().hex[:8]}"


def service_env(fake_url: str, settings: Mapping[str, object]) -> dict[str, str]:
    """Providers pointed at the fake, plus `BIGTHREE_<NAME>` for each setting."""
    env = {
        "OPENAI_BASE_URL": f"{fake_url}/v1",
        "ANTHROPIC_BASE_URL": fake_url,
        "GEMINI_BASE_URL": fake_url,
    }
    for name, value in {**BASE_SETTINGS, **settings}.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        key = name if name.isupper() else f"BIGTHREE_{name.upper()}"
        env[key] = text
    return env


@contextmanager
def chaos_service(tmp: Path, fake_url: str, **settings: object) -> Iterator[Proc]:
    """A dedicated service process with tuned settings, stopped on exit."""
    proc = start_service(tmp, env=service_env(fake_url, settings))
    try:
        yield proc
    finally:
        proc.stop()


@contextmanager
def http_client(proc: Proc) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proc.url, timeout=10.0) as http:
        yield http


# --- agents and tasks ---------------------------------------------------------------------


def make_agent(
    http: httpx.Client, name: str, provider: str, model: str, **extra: Any
) -> dict[str, Any]:
    body = {"name": name, "kind": "chat", "provider": provider, "model": model, **extra}
    response = http.post("/v1/agents", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def run_task(
    http: httpx.Client, agent: str, prompt: str = "hello", timeout: float = 20.0, **extra: Any
) -> dict[str, Any]:
    """Submit one task and wait until it is finished and announced; return the finished task."""
    task = submit(http, agent, prompt, **extra)
    return wait_all(http, [task["id"]], timeout=timeout)[0]


def wait_all(
    http: httpx.Client, task_ids: Iterable[str], timeout: float = 30.0
) -> list[dict[str, Any]]:
    """Wait until every task is finished and its `task.<state>` event is out (one deadline for
    all); return the tasks in order.

    The store says "finished" a moment before the service has updated the agent's totals and
    emitted the final event; waiting for that event makes every later read consistent."""
    ids = list(task_ids)
    done: dict[str, dict[str, Any]] = {}
    announced: set[str] = set()

    def all_finished() -> bool:
        for task_id in ids:
            if task_id not in done:
                task = http.get(f"/v1/tasks/{task_id}").json()
                if task["state"] not in FINISHED:
                    return False
                done[task_id] = task
        for agent in {task["agent"] for task in done.values()}:
            for event in events(http, agent=agent, type="task.*"):
                task = done.get(event["task_id"])
                if task is not None and event["type"] == f"task.{task['state']}":
                    announced.add(event["task_id"])
        return announced >= set(ids)

    wait_until(all_finished, timeout=timeout, what=f"{len(ids)} tasks to finish")
    return [done[task_id] for task_id in ids]


def assert_settled(http: httpx.Client, agents: Iterable[str]) -> None:
    """No task is lost or left running: each agent has nothing running or queued, and every
    task it was given is in a finished state."""
    for name in agents:
        agent = http.get(f"/v1/agents/{name}").json()
        assert agent["running_task_id"] is None, agent
        assert agent["queued_tasks"] == 0, agent
        tasks = http.get(f"/v1/agents/{name}/tasks", params={"limit": 1000}).json()["tasks"]
        assert len(tasks) == agent["tasks_total"], (len(tasks), agent)
        unfinished = [t["id"] for t in tasks if t["state"] not in FINISHED]
        assert not unfinished, f"{name}: unfinished tasks {unfinished}"


# --- events -------------------------------------------------------------------------------


def last_seq(http: httpx.Client) -> int:
    seq: int = http.get("/v1/events", params={"limit": 1}).json()["last_seq"]
    return seq


def events(
    http: httpx.Client,
    *,
    after_seq: int = 0,
    agent: str | None = None,
    type: str | None = None,
    task_id: str | None = None,
) -> list[dict[str, Any]]:
    """Every stored event after `after_seq` matching the filters, in seq order."""
    params: dict[str, Any] = {"after_seq": after_seq, "limit": 1000}
    if agent is not None:
        params["agent"] = agent
    if type is not None:
        params["type"] = type
    out: list[dict[str, Any]] = []
    while True:
        page = http.get("/v1/events", params=params).json()
        out.extend(page["events"])
        if len(page["events"]) < params["limit"]:
            break
        params["after_seq"] = page["next_after_seq"]
    if task_id is not None:
        out = [e for e in out if e["task_id"] == task_id]
    return out


def of_type(evs: Iterable[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [e for e in evs if e["type"] == type_]


def transitions(http: httpx.Client, breaker: str, after_seq: int = 0) -> list[tuple[str, str, str]]:
    """(from, to, reason) of every `breaker.transition` of `breaker` after `after_seq`."""
    return [
        (e["payload"]["from"], e["payload"]["to"], e["payload"]["reason"])
        for e in events(http, after_seq=after_seq, type="breaker.transition")
        if e["payload"]["breaker"] == breaker
    ]


# --- provider status and metrics -----------------------------------------------------------


def provider_status(http: httpx.Client, name: str) -> dict[str, Any]:
    for entry in http.get("/v1/providers").json()["providers"]:
        if entry["name"] == name:
            found: dict[str, Any] = entry
            return found
    raise AssertionError(f"provider {name!r} not listed")


def breaker_snapshot(http: httpx.Client, provider: str, key: str) -> dict[str, Any]:
    for snapshot in provider_status(http, provider)["breakers"]:
        if snapshot["name"] == key:
            found: dict[str, Any] = snapshot
            return found
    raise AssertionError(f"breaker {key!r} not listed under {provider!r}")


def wait_breaker(
    http: httpx.Client, provider: str, key: str, state: str, timeout: float = 10.0
) -> dict[str, Any]:
    """Poll GET /v1/providers until breaker `key` is in `state`; return its snapshot."""
    seen: dict[str, Any] = {}

    def reached() -> bool:
        seen.update(breaker_snapshot(http, provider, key))
        return seen["state"] == state

    wait_until(reached, timeout=timeout, what=f"breaker {key} to be {state}")
    return seen


def metric(http: httpx.Client, name: str, **labels: str) -> float | None:
    """The value of the sample `name{labels}` in /metrics (labels must match exactly)."""
    text = http.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


def metric_sum(http: httpx.Client, name: str, **labels: str) -> float:
    """Sum of every sample `name` whose labels include `labels`."""
    text = http.get("/metrics").text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += float(sample.value)
    return total


def upstream_count(fake: FakeUpstreamClient, model: str) -> int:
    return len(fake.requests(model=model))


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started
