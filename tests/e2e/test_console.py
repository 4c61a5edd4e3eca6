"""The web console at /ui, in a real headless Chromium driven by Playwright, against a real
service (with an API key) and the fake upstream.

Screenshots land in `test-artifacts/console/` (or `$BIGTHREE_TEST_ARTIFACTS/console/`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.fake_upstream.client import FakeUpstreamClient
from tests.conftest import provider_env, unique
from tests.support.api import wait_task
from tests.support.procs import Proc, start_service

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)"
)
KEY = "console-key-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("BIGTHREE_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "console"
TIMEOUT_MS = 20_000

if CHROMIUM.exists():
    from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright


class Server:
    """The service under test, restartable on the same port and data directory."""

    def __init__(self, tmp: Path, fake_url: str) -> None:
        self.tmp = tmp
        self.env = {
            **provider_env(fake_url),
            "BIGTHREE_API_KEYS": KEY,
            "BIGTHREE_BREAKER_PER_MODEL": "true",
            "BIGTHREE_GRAFANA_URL": "http://127.0.0.1:3000/d/bigthree",
        }
        self.data = tmp / "data"
        self.proc = start_service(tmp, env=self.env, data_dir=self.data)
        self.url = self.proc.url

    def restart(self) -> None:
        port = int(self.url.rsplit(":", 1)[1])
        self.proc.stop()
        self.proc = start_service(self.tmp, env=self.env, data_dir=self.data, port=port)

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"authorization": f"Bearer {KEY}"}, timeout=10
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fake_upstream: Proc) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("console"), fake_upstream.url)
    yield server
    server.proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page_errors() -> list[str]:
    return []


@pytest.fixture(scope="module")
def page(browser: Browser, server: Server, page_errors: list[str]) -> Iterator[Page]:
    """One tab for the whole module, signed in with the key (as an operator would be)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)

    def on_console(message: ConsoleMessage) -> None:
        # a CSP violation or a script error shows here. Expected: refused connections and
        # /ready's 503 while the server restarts, and a 404 from a server without the task
        # artifacts route
        expected = ("ERR_CONNECTION_REFUSED", "status of 503", "status of 404 (Not Found)")
        if message.type == "error" and not any(text in message.text for text in expected):
            page_errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    page.goto(server.url + "/")  # GET / leads to the console
    expect(page).to_have_url(re.compile(r"/ui/"))
    page.get_by_test_id("key-input").fill(KEY)
    page.get_by_test_id("key-submit").click()
    expect(page.locator("h1")).to_have_text("Agents")
    yield page
    context.close()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def create_agent_in_ui(page: Page, name: str, model: str) -> None:
    page.goto(page.url.split("#")[0] + "#/agents")
    page.get_by_test_id("agent-name").fill(name)
    page.get_by_test_id("agent-model").fill(model)
    page.get_by_test_id("agent-create").click()
    expect(page.locator(f'tr[data-agent="{name}"]')).to_be_visible()


def run_in_ui(page: Page, agent: str, prompt: str) -> None:
    page.get_by_test_id("task-agent").select_option(agent)
    page.get_by_test_id("task-prompt").fill(prompt)
    page.get_by_test_id("task-submit").click()


def test_console_headers_and_key_prompt(server: Server) -> None:
    """/ui is served with a strict CSP (no 'unsafe-inline'), no framing, no referrer; the
    API still refuses requests without the key."""
    response = httpx.get(server.url + "/ui/", timeout=10)
    assert response.status_code == 200 and "<script" in response.text
    csp = response.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp
    assert response.headers["referrer-policy"] == "no-referrer"
    assert httpx.get(server.url + "/ui/config.json").json()["auth_required"] is True
    assert httpx.get(server.url + "/v1/agents").status_code == 401


def test_create_agent_run_a_task_and_see_its_result(
    page: Page, server: Server, page_errors: list[str]
) -> None:
    """Create an agent in the console, give it a task, watch its events arrive and its
    result appear."""
    name = unique("console")
    create_agent_in_ui(page, name, "gpt-4o-mini")
    run_in_ui(page, name, "hello from the browser")
    events = page.get_by_test_id("progress-events")
    expect(events.locator('li[data-type="task.succeeded"]')).to_be_visible()
    for event_type in ("task.queued", "task.running", "llm.request", "llm.response"):
        expect(events.locator(f'li[data-type="{event_type}"]')).to_have_count(1)
    expect(page.get_by_test_id("task-result")).to_have_text("echo: hello from the browser")
    expect(page.locator(f'tr[data-agent="{name}"] td').nth(6)).to_have_text("1")
    shot(page, "agents-task-result")
    assert not page_errors, page_errors


def test_cancel_a_running_task_from_the_console(
    page: Page, server: Server, fake: FakeUpstreamClient, page_errors: list[str]
) -> None:
    """A slow task's events show up live while it runs; cancelling it ends it as cancelled."""
    name, model = unique("slowpoke"), unique("slow-model")
    fake.script(model, [{"text": "too late", "latency_s": 30}])
    create_agent_in_ui(page, name, model)
    run_in_ui(page, name, "take your time")
    events = page.get_by_test_id("progress-events")
    expect(events.locator('li[data-type="llm.request"]')).to_be_visible()
    expect(page.get_by_test_id("progress-state").locator("[data-state]")).to_have_attribute(
        "data-state", "running"
    )
    shot(page, "task-running")
    page.get_by_test_id("task-cancel").click()
    expect(events.locator('li[data-type="task.cancelled"]')).to_be_visible()
    expect(page.get_by_test_id("task-error")).to_contain_text("cancelled")
    assert not page_errors, page_errors


def test_task_list_and_detail(page: Page, server: Server, page_errors: list[str]) -> None:
    """The tasks page filters by agent and state; a task's page shows its result, usage,
    timings and event timeline (and no artifacts section for a chat task)."""
    name = unique("detailed")
    with server.http() as http:
        http.post("/v1/agents", json={"name": name, "model": "gpt-4o-mini"}).raise_for_status()
        task = http.post(f"/v1/agents/{name}/tasks?wait=10", json={"prompt": "details"}).json()
    assert task["state"] == "succeeded"
    base = page.url.split("#")[0]
    page.goto(f"{base}#/tasks?agent={name}&state=succeeded")
    row = page.locator(f'tr[data-task="{task["id"]}"]')
    expect(row).to_be_visible()
    page.goto(f"{base}#/tasks?agent={name}&state=failed")
    expect(page.get_by_text("No tasks match.")).to_be_visible()
    page.goto(f"{base}#/tasks/{task['id']}")
    expect(page.get_by_test_id("detail-result")).to_have_text("echo: details")
    detail = page.get_by_test_id("task-detail")
    expect(detail).to_contain_text("run time")
    expect(detail).to_contain_text(" in / ")
    timeline = page.get_by_test_id("task-timeline")
    expect(timeline.locator('li[data-type="task.succeeded"]')).to_have_count(1)
    expect(page.get_by_test_id("task-artifacts").locator("img")).to_have_count(0)
    shot(page, "task-detail")
    assert not page_errors, page_errors


def test_force_a_breaker_open_and_reset_it(
    page: Page, server: Server, page_errors: list[str]
) -> None:
    """The providers page shows each model's breaker; force open shows `forced_open`,
    reset closes it again — and the server agrees."""
    name, model = unique("breaker"), unique("breaker-model")
    with server.http() as http:
        http.post("/v1/agents", json={"name": name, "model": model}).raise_for_status()
        wait_task(http, http.post(f"/v1/agents/{name}/tasks", json={"prompt": "x"}).json()["id"])
    page.goto(page.url.split("#")[0] + "#/providers")
    badge = page.locator(f'tr[data-breaker="openai/{model}"] [data-state]')
    expect(badge).to_have_attribute("data-state", "closed")
    page.get_by_test_id(f"force-open-openai/{model}").click()
    expect(badge).to_have_attribute("data-state", "forced_open")
    shot(page, "providers-forced-open")
    with server.http() as http:
        states = _breaker_states(http.get("/v1/providers").json())
    assert states[f"openai/{model}"] == "forced_open"
    page.get_by_test_id(f"reset-openai/{model}").click()
    expect(badge).to_have_attribute("data-state", "closed")
    page.goto(page.url.split("#")[0] + "#/costs")
    expect(page.get_by_test_id("costs")).to_contain_text(name)
    assert page.locator("#grafana-link").get_attribute("href") == server.env["BIGTHREE_GRAFANA_URL"]
    assert not page_errors, page_errors


def _breaker_states(body: dict[str, Any]) -> dict[str, str]:
    return {b["name"]: b["state"] for p in body["providers"] for b in p["breakers"]}


def run_task(server: Server, agent: str, prompt: str) -> None:
    with server.http() as http:
        task = http.post(f"/v1/agents/{agent}/tasks", json={"prompt": prompt}).json()
        wait_task(http, task["id"])


def stored_seqs(server: Server, agent: str) -> list[int]:
    with server.http() as http:
        page = http.get("/v1/events", params={"agent": agent, "limit": 1000}).json()
    return [e["seq"] for e in page["events"]]


def test_event_stream_survives_a_server_restart(
    page: Page, server: Server, page_errors: list[str]
) -> None:
    """The events page follows the stream live (filtered by agent), reconnects after the
    server restarts, pauses and resumes — and shows exactly the stored events: none lost,
    none twice."""
    name = unique("restart")
    with server.http() as http:
        http.post("/v1/agents", json={"name": name, "model": "gpt-4o-mini"}).raise_for_status()
    page.goto(page.url.split("#")[0] + f"#/events?agent={name}")
    status = page.get_by_test_id("stream-status")
    expect(status).to_have_attribute("data-state", "live")
    rows = page.get_by_test_id("events-rows").locator("tr")
    expect(rows.filter(has_text="agent.created")).to_have_count(1)

    def shown() -> list[int]:
        return sorted(int(seq) for seq in rows.evaluate_all("rs => rs.map(r => r.dataset.seq)"))

    run_task(server, name, "before")
    expect(rows.filter(has_text="task.succeeded")).to_have_count(1)
    server.restart()
    expect(status).to_have_attribute("data-state", "live")  # reconnected by itself
    run_task(server, name, "after")
    expect(rows.filter(has_text="task.succeeded")).to_have_count(2)
    assert shown() == stored_seqs(server, name)

    page.get_by_test_id("events-pause").click()
    expect(status).to_have_attribute("data-state", "paused")
    run_task(server, name, "while paused")
    page.get_by_test_id("events-pause").click()  # resume: the missed task arrives, once
    expect(rows.filter(has_text="task.succeeded")).to_have_count(3)
    assert shown() == stored_seqs(server, name)
    shot(page, "events-after-restart")
    assert not page_errors, page_errors
