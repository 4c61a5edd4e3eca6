"""A real Prometheus scraping a real service: every dashboard query returns data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from app.fake_upstream.client import FakeUpstreamClient
from tests.support.api import create_agent, submit, wait_task
from tests.support.monitoring import (
    ALERTS,
    Prometheus,
    alert_rules,
    dashboard_targets,
    load_dashboard,
    running_prometheus,
    substitute,
)
from tests.support.procs import Proc, start_fake_upstream, start_service, wait_until

pytestmark = pytest.mark.monitoring

GOOD_MODEL = "gpt-4o-mini"
FAILING_MODEL = "gpt-4o"
GOOD_TASKS = 3
FAILING_TASKS = 4


@dataclass
class Stack:
    service: Proc
    fake: Proc
    prometheus: Prometheus

    @property
    def target(self) -> str:
        return self.service.url.removeprefix("http://")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Fake upstream, the service pointed at it, and Prometheus scraping it every second."""
    tmp = tmp_path_factory.mktemp("monitoring-live")
    fake = start_fake_upstream(tmp)
    try:
        service = start_service(
            tmp,
            env={
                "OPENAI_BASE_URL": f"{fake.url}/v1",
                "BIGTHREE_RETRY_INITIAL_BACKOFF_S": "0.01",
                "BIGTHREE_RETRY_MAX_BACKOFF_S": "0.05",
            },
        )
        try:
            target = service.url.removeprefix("http://")
            with running_prometheus(tmp, targets=[target], rule_files=[ALERTS]) as prometheus:
                stack = Stack(service, fake, prometheus)
                drive_traffic(stack)
                wait_for_scrape(stack)
                yield stack
        finally:
            service.stop()
    finally:
        fake.stop()


def drive_traffic(stack: Stack) -> None:
    """Successful and failing tasks (provider 500s, with retries) and a client error."""
    with httpx.Client(base_url=stack.service.url, timeout=10.0) as http:
        create_agent(http, "monitoring-good", model=GOOD_MODEL)
        for i in range(GOOD_TASKS):
            task = submit(http, "monitoring-good", f"hello {i}")
            assert wait_task(http, task["id"])["state"] == "succeeded"
        FakeUpstreamClient(stack.fake.url).script(FAILING_MODEL, [{"status": 500, "repeat": -1}])
        create_agent(http, "monitoring-failing", model=FAILING_MODEL)
        for i in range(FAILING_TASKS):
            task = submit(http, "monitoring-failing", f"fail {i}")
            assert wait_task(http, task["id"])["state"] == "failed"
        assert http.get("/v1/agents/no-such-agent").status_code == 404


def wait_for_scrape(stack: Stack) -> None:
    """Poll until Prometheus holds a scrape taken after all the traffic above."""
    finished = GOOD_TASKS + FAILING_TASKS

    def scraped() -> bool:
        result = stack.prometheus.query("sum(bigthree_tasks_total)")
        return bool(result) and float(result[0]["value"][1]) >= finished

    wait_until(scraped, timeout=60, what="Prometheus to scrape the finished tasks")


def variables(stack: Stack) -> dict[str, str]:
    return {
        "instance": stack.target,
        "provider": "openai",
        "__rate_interval": "1m",
        "__range": "1h",
    }


def test_service_is_scraped(stack: Stack) -> None:
    """The service's /metrics is scraped successfully (up == 1)."""
    result = stack.prometheus.query(f'up{{job="bigthree", instance="{stack.target}"}}')
    assert [sample["value"][1] for sample in result] == ["1"]


def assert_all_have_data(
    stack: Stack, queries: list[tuple[str, str]], timeout: float = 20.0
) -> None:
    empty: list[str] = []

    def all_have_data() -> bool:
        empty.clear()
        empty.extend(
            f"{title}: {expr}" for title, expr in queries if not stack.prometheus.query(expr)
        )
        return not empty

    try:
        wait_until(all_have_data, timeout=timeout, what="every dashboard query to return data")
    except AssertionError:
        pytest.fail("dashboard queries without data:\n" + "\n".join(empty))


def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    """Each panel query, variables substituted, returns a non-empty result."""
    queries = [
        (title, substitute(expr, variables(stack)))
        for title, expr in dashboard_targets(load_dashboard())
    ]
    assert len(queries) >= 20
    assert_all_have_data(stack, queries)


def test_template_variables_resolve(stack: Stack) -> None:
    """`instance` lists the scraped service and `provider` lists openai."""
    found = {}
    for variable in load_dashboard()["templating"]["list"]:
        match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"])
        assert match, variable["name"]
        selector = substitute(match.group(1), variables(stack))
        series = stack.prometheus.api("series", **{"match[]": selector})
        found[variable["name"]] = {s[match.group(2)] for s in series if match.group(2) in s}
    assert found["instance"] == {stack.target}
    assert "openai" in found["provider"]


def test_alert_rules_load_and_evaluate(stack: Stack) -> None:
    """Prometheus loads every alert rule and evaluates it without error."""
    groups = stack.prometheus.api("rules", type="alert")["groups"]
    loaded = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert set(loaded) == {rule["alert"] for rule in alert_rules()}
    for rule in alert_rules():
        stack.prometheus.query(rule["expr"])  # raises on an error; no data is fine

    def evaluated() -> bool:
        groups = stack.prometheus.api("rules", type="alert")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return all(rule.get("lastEvaluation", "").startswith("20") for rule in rules)

    wait_until(evaluated, timeout=20, what="every alert rule to be evaluated")
    groups = stack.prometheus.api("rules", type="alert")["groups"]
    unhealthy = [
        f"{rule['name']}: {rule.get('lastError')}"
        for group in groups
        for rule in group["rules"]
        if rule["health"] != "ok"
    ]
    assert not unhealthy


def test_failing_provider_shows_in_metrics(stack: Stack) -> None:
    """The scripted 500s appear as failed tasks, failed calls and retries."""
    failed = stack.prometheus.query('sum(bigthree_tasks_total{outcome="failed"})')
    assert float(failed[0]["value"][1]) == FAILING_TASKS
    retries = stack.prometheus.query('sum(bigthree_llm_retries_total{provider="openai"})')
    assert float(retries[0]["value"][1]) > 0
    errors = stack.prometheus.query(
        f'sum(bigthree_llm_requests_total{{model="{FAILING_MODEL}", outcome!="success"}})'
    )
    assert float(errors[0]["value"][1]) >= FAILING_TASKS
