"""`browser` agents over real HTTP: the computer-use loop through the fake Gemini upstream,
driving a real headless Chromium on a local test site served by the test itself.

The pages: `/` has a status line, a big "Go" button (grid 500,450) that turns the page green
and the status to "clicked", and a name field (grid 250,730) whose form posts to
`/submitted`; `/set-cookie` stores a cookie and localStorage; `/whoami` shows both.
"""

from __future__ import annotations

import hashlib
import signal
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.fake_upstream.client import FakeUpstreamClient
from tests.conftest import AUTH_KEY, provider_env, unique
from tests.support.api import submit, wait_task
from tests.support.browser import (
    Site,
    chromium_under,
    pixel,
    png_image,
    require_chromium,
    serve_site,
    still_running,
)
from tests.support.procs import Proc, start_service, wait_until

MODEL = "gemini-2.5-computer-use-preview-10-2025"
SCREEN = {"width": 1024, "height": 640}
WHITE, GREEN = (255, 255, 255), (0, 204, 0)

HOME = """<!doctype html><html><head><title>Test site</title><style>
body { margin: 0; font: 24px sans-serif; background: #fff; }
#status { position: absolute; left: 5%; top: 5%; width: 40%; height: 10%; }
#go { position: absolute; left: 40%; top: 40%; width: 20%; height: 10%; font-size: 30px; }
#name { position: absolute; left: 10%; top: 70%; width: 30%; height: 6%; font-size: 24px; }
#send { position: absolute; left: 45%; top: 70%; width: 10%; height: 6%; }
</style></head><body>
<div id=status>idle</div>
<button id=go onclick="document.getElementById('status').textContent = 'clicked';
  document.body.style.background = '#00cc00'">Go</button>
<form action=/submitted method=post><input id=name name=name><button id=send>Send</button></form>
</body></html>"""
WHOAMI = """<!doctype html><title>whoami</title><p id=who></p><script>
document.getElementById('who').textContent = 'cookie: ' + (document.cookie || 'none') +
  '; storage: ' + (localStorage.getItem('seen') || 'none');
</script>"""


def submitted(path: str) -> tuple[int, dict[str, str], str]:
    return 200, {}, "<!doctype html><title>done</title><p>Hello, form received</p>"


PAGES: dict[str, Any] = {
    "/": HOME,
    "/submitted": submitted,
    "/whoami": WHOAMI,
    "/set-cookie": (
        200,
        {"set-cookie": "seen=1; Path=/"},
        "<title>set</title><script>localStorage.setItem('seen', '1')</script><p>cookie set</p>",
    ),
}


def cu(call_id: str, name: str, **arguments: Any) -> dict[str, Any]:
    return {"id": call_id, "name": name, "arguments": arguments}


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with serve_site(PAGES) as served:
        yield served


def browser_env(fake_url: str, **extra: str) -> dict[str, str]:
    return {
        **provider_env(fake_url),
        "BIGTHREE_BREAKER_PER_MODEL": "true",
        "BIGTHREE_RETRY_BUDGET_MIN_PER_S": "1000",
        "BIGTHREE_BROWSER_ACTION_TIMEOUT_S": "10",
        **extra,
    }


@pytest.fixture(scope="module")
def browser_service(
    tmp_path_factory: pytest.TempPathFactory, fake_upstream: Proc
) -> Iterator[Proc]:
    """The shared service for browser tests: default safety (deny), 4 pages."""
    require_chromium()
    proc = start_service(tmp_path_factory.mktemp("browser"), env=browser_env(fake_upstream.url))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def allow_service(tmp_path_factory: pytest.TempPathFactory, fake_upstream: Proc) -> Iterator[Proc]:
    """BIGTHREE_BROWSER_SAFETY=allow and one page at a time (waiting up to 30 s for it)."""
    require_chromium()
    env = browser_env(
        fake_upstream.url,
        BIGTHREE_BROWSER_SAFETY="allow",
        BIGTHREE_BROWSER_MAX_PAGES="1",
        BIGTHREE_BROWSER_MAX_WAIT_S="30",
    )
    proc = start_service(tmp_path_factory.mktemp("browser-allow"), env=env)
    yield proc
    proc.stop()


@pytest.fixture
def http(browser_service: Proc) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=browser_service.url, timeout=30.0) as client:
        yield client


def new_browser(http: httpx.Client, site: Site | None, **extra: Any) -> tuple[str, str]:
    """A browser agent with a unique name and model; returns (name, model)."""
    name, model = unique("scout"), f"{MODEL}-{unique('t')}"
    body: dict[str, Any] = {
        "name": name,
        "kind": "browser",
        "provider": "gemini",
        "model": model,
        "screen": SCREEN,
    }
    if site is not None:
        body |= {"allowed_origins": [site.origin()], "start_url": f"{site.origin()}/"}
    response = http.post("/v1/agents", json={**body, **extra})
    assert response.status_code == 201, response.text
    return name, model


def events(http: httpx.Client, agent: str, prefix: str = "browser.*") -> list[dict[str, Any]]:
    response = http.get("/v1/events", params={"agent": agent, "type": prefix, "limit": 1000})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["events"]
    return found


def artifacts(http: httpx.Client, task_id: str) -> list[dict[str, Any]]:
    response = http.get(f"/v1/tasks/{task_id}/artifacts")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["artifacts"]
    return found


def image(http: httpx.Client, task_id: str, artifact_id: str) -> bytes:
    response = http.get(f"/v1/tasks/{task_id}/artifacts/{artifact_id}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return response.content


# --- the loop on a real page ----------------------------------------------------------------


def test_scripted_turns_drive_a_real_page(
    browser_service: Proc, http: httpx.Client, fake: FakeUpstreamClient, site: Site
) -> None:
    """Look, then click and type in one turn, then answer: the page changed as the actions
    said (the form was posted), each action has a real PNG of the screen's size that shows
    the change, and events, artifacts and what the model was sent all agree."""
    name, model = new_browser(http, site)
    fake.script(
        model,
        [
            {"tool_calls": [cu("c0", "open_web_browser")]},
            {
                "tool_calls": [
                    cu("c1", "click_at", x=500, y=450),
                    cu("c2", "type_text_at", x=250, y=730, text="Ada", press_enter=True),
                ]
            },
            {"text": "Clicked Go and sent the form as Ada."},
        ],
    )
    task = wait_task(
        http, submit(http, name, "click Go, then send the form as Ada")["id"], timeout=60
    )
    assert task["state"] == "succeeded", task
    assert task["result"] == "Clicked Go and sent the form as Ada."
    assert ("/submitted", {"name": ["Ada"]}) in site.posted

    stored = artifacts(http, task["id"])
    assert [(a["kind"], a["action"]) for a in stored] == [
        ("screenshot", "open_web_browser"),
        ("screenshot", "click_at"),
        ("screenshot", "type_text_at"),
        ("final", None),
    ]
    pngs = [image(http, task["id"], a["id"]) for a in stored]
    for artifact, png in zip(stored, pngs, strict=True):
        assert png_image(png).size == (SCREEN["width"], SCREEN["height"])
        assert (artifact["width"], artifact["height"]) == (SCREEN["width"], SCREEN["height"])
        assert artifact["sha256"] == hashlib.sha256(png).hexdigest()
    before, after_click = pngs[0], pngs[1]
    assert pixel(before, 900, 900) == WHITE and pixel(after_click, 900, 900) == GREEN
    assert png_image(before).tobytes() != png_image(after_click).tobytes()
    assert stored[-1]["url"] == f"{site.origin()}/submitted"
    assert "Hello, form received" in stored[-1]["text"]

    actions = events(http, name, "browser.action")
    assert [e["payload"]["name"] for e in actions] == [
        "open_web_browser",
        "click_at",
        "type_text_at",
    ]
    click = actions[1]["payload"]
    assert click["grid"] == {"x": 500, "y": 450}
    assert click["pixels"] == {"x": 512, "y": 288}
    assert click["outcome"] == "ok" and click["url"] == f"{site.origin()}/"
    assert [e["payload"]["screenshot"] for e in actions] == [a["id"] for a in stored[:3]]

    sent = fake.computer_use(model)
    assert [(r.name, r.call_id) for r in sent] == [
        ("open_web_browser", "c0"),
        ("click_at", "c1"),
        ("type_text_at", "c2"),
    ]
    assert [r.sha256 for r in sent] == [a["sha256"] for a in stored[:3]]
    assert all((r.width, r.height) == (SCREEN["width"], SCREEN["height"]) for r in sent)
    assert sent[2].url == f"{site.origin()}/submitted"
    first = fake.requests(model=model)[0].body
    assert first["tools"] == [{"computerUse": {"environment": "ENVIRONMENT_BROWSER"}}]
    # the browser was closed with the task
    wait_until(lambda: not chromium_under(browser_service.popen.pid), what="Chromium to exit")


def test_bad_calls_are_answered_and_old_screenshots_dropped(
    http: httpx.Client, fake: FakeUpstreamClient, site: Site
) -> None:
    """An unknown action, a point off the grid and a refused navigation are answered with
    errors (the task goes on); a MALFORMED_FUNCTION_CALL turn is asked again; only the last
    three turns keep their screenshots in what the model is sent."""
    name, model = new_browser(http, site)
    fake.script(
        model,
        [
            {
                "tool_calls": [
                    cu("b1", "teleport", x=1),
                    cu("b2", "click_at", x=1500, y=10),
                    cu("b3", "navigate", url="http://127.0.0.1:9/elsewhere"),
                ]
            },
            {"tool_calls": [cu("w1", "open_web_browser")]},
            {"tool_calls": [cu("w2", "open_web_browser")]},
            {"text": "", "finish_reason": "MALFORMED_FUNCTION_CALL"},
            {"tool_calls": [cu("w3", "open_web_browser")]},
            {"text": "done"},
        ],
    )
    task = wait_task(http, submit(http, name, "try odd things")["id"], timeout=60)
    assert task["state"] == "succeeded" and task["result"] == "done", task

    errors = {r.call_id: r.error for r in fake.computer_use(model)}
    assert "unknown action 'teleport'" in str(errors["b1"])
    assert "x: must be an integer on the 0-999 grid" in str(errors["b2"])
    assert "http://127.0.0.1:9 is not an allowed origin" in str(errors["b3"])
    assert errors["w1"] is None
    outcomes = {
        e["payload"]["call_id"]: e["payload"]["outcome"]
        for e in events(http, name, "browser.action")
    }
    assert outcomes == {
        "b1": "error",
        "b2": "error",
        "b3": "refused",
        "w1": "ok",
        "w2": "ok",
        "w3": "ok",
    }
    refused = events(http, name, "browser.navigation_refused")
    assert [(e["payload"]["stage"], e["payload"]["url"]) for e in refused] == [
        ("navigate", "http://127.0.0.1:9/elsewhere")
    ]
    assert [e["payload"]["step"] for e in events(http, name, "browser.malformed_call")] == [4]

    last = fake.requests(model=model)[-1].body
    with_image = [
        [bool(p["functionResponse"].get("parts")) for p in c["parts"] if "functionResponse" in p]
        for c in last["contents"]
        if any("functionResponse" in p for p in c["parts"])
    ]
    assert with_image == [[False, False, False], [True], [True], [True]]
    metrics = http.get("/metrics").text
    assert 'bigthree_browser_actions_total{action="unknown",outcome="error"}' in metrics
    assert 'bigthree_browser_navigation_refusals_total{stage="navigate"}' in metrics


def test_safety_deny_does_not_act(http: httpx.Client, fake: FakeUpstreamClient, site: Site) -> None:
    """BIGTHREE_BROWSER_SAFETY=deny (the default): an action the model marks
    require_confirmation is not done, the model is told, and the refusal is an event."""
    name, model = new_browser(http, site)
    decision = {"decision": "require_confirmation", "explanation": "This buys something."}
    fake.script(
        model,
        [
            {"tool_calls": [cu("s1", "click_at", x=500, y=450, safety_decision=decision)]},
            {"text": "I did not click."},
        ],
    )
    task = wait_task(http, submit(http, name, "buy it")["id"], timeout=60)
    assert task["state"] == "succeeded", task
    (record,) = fake.computer_use(model)
    assert "needs the user's confirmation" in str(record.error)
    assert not record.safety_acknowledgement
    (refusal,) = events(http, name, "browser.safety_refused")
    assert refusal["payload"]["explanation"] == "This buys something."
    final = artifacts(http, task["id"])[-1]
    assert final["kind"] == "final" and final["text"].startswith("idle")


# --- safety allow and the page bulkhead (their own service) -----------------------------


def test_safety_allow_acts_and_acknowledges(
    allow_service: Proc, fake: FakeUpstreamClient, site: Site
) -> None:
    """BIGTHREE_BROWSER_SAFETY=allow: the action runs, and its answer carries
    safety_acknowledgement."""
    with httpx.Client(base_url=allow_service.url, timeout=30) as http:
        name, model = new_browser(http, site)
        decision = {"decision": "require_confirmation", "explanation": "Sure?"}
        fake.script(
            model,
            [
                {"tool_calls": [cu("s1", "click_at", x=500, y=450, safety_decision=decision)]},
                {"text": "Clicked."},
            ],
        )
        task = wait_task(http, submit(http, name, "click it")["id"], timeout=60)
        assert task["state"] == "succeeded", task
        (record,) = fake.computer_use(model)
        assert record.error is None and record.safety_acknowledgement
        (action,) = events(http, name, "browser.action")
        assert action["payload"]["safety_acknowledged"] is True
        assert artifacts(http, task["id"])[-1]["text"].startswith("clicked")


def test_one_page_at_a_time_and_never_shared(
    allow_service: Proc, fake: FakeUpstreamClient, site: Site
) -> None:
    """BIGTHREE_BROWSER_MAX_PAGES=1: the second agent's task waits (browser.waiting) until
    the first one's browser is closed, then gets a fresh one: no cookie, no storage."""
    with httpx.Client(base_url=allow_service.url, timeout=30) as http:
        first, first_model = new_browser(http, site)
        second, second_model = new_browser(http, site, start_url=f"{site.origin()}/whoami")
        fake.script(
            first_model,
            [
                {
                    "tool_calls": [cu("f1", "navigate", url=f"{site.origin()}/set-cookie")],
                    "latency_s": 1.0,
                },
                {"tool_calls": [cu("f2", "navigate", url=f"{site.origin()}/whoami")]},
                {"text": "set"},
            ],
        )
        fake.script(second_model, [{"text": "looked"}])
        one = submit(http, first, "set a cookie")
        wait_until(lambda: len(fake.requests(model=first_model)) == 1, what="the first to run")
        two = submit(http, second, "look")
        done_one = wait_task(http, one["id"], timeout=60)
        done_two = wait_task(http, two["id"], timeout=60)
        assert done_one["state"] == done_two["state"] == "succeeded"
        assert artifacts(http, one["id"])[-1]["text"] == "cookie: seen=1; storage: 1"
        assert artifacts(http, two["id"])[-1]["text"] == "cookie: none; storage: none"
        log = http.get("/v1/events", params={"limit": 1000}).json()["events"]
        seq = {(e["agent"], e["type"]): e["seq"] for e in log if e["agent"] in (first, second)}
        assert seq[(second, "browser.waiting")] < seq[(first, "task.succeeded")]
        assert seq[(first, "task.succeeded")] < seq[(second, "llm.request")]


# --- every way a task ends closes its browser -------------------------------------------


def test_cancel_and_deadline_mid_action_leave_no_chromium(
    browser_service: Proc, http: httpx.Client, fake: FakeUpstreamClient, site: Site
) -> None:
    """A task cancelled, and one timed out, in the middle of an action (wait_5_seconds):
    the states are right and no Chromium process is left under the service."""
    name, model = new_browser(http, site)
    fake.script(model, [{"tool_calls": [cu("w", "wait_5_seconds")]}, {"text": "waited"}])
    task = submit(http, name, "wait")
    wait_until(lambda: len(fake.requests(model=model)) == 1, what="the action to start")
    assert chromium_under(browser_service.popen.pid), "a browser runs the task"
    cancelled = http.post(f"/v1/tasks/{task['id']}/cancel").json()
    assert cancelled["state"] == "cancelled"
    wait_until(lambda: not chromium_under(browser_service.popen.pid), what="Chromium to exit")

    name, model = new_browser(http, site)
    fake.script(model, [{"tool_calls": [cu("w", "wait_5_seconds")]}, {"text": "waited"}])
    late = wait_task(http, submit(http, name, "wait", timeout_s=2)["id"], timeout=30)
    assert late["state"] == "timed_out", late
    wait_until(lambda: not chromium_under(browser_service.popen.pid), what="Chromium to exit")


def test_drain_and_kill_leave_no_chromium(
    tmp_path: Any, fake_upstream: Proc, fake: FakeUpstreamClient, site: Site
) -> None:
    """SIGTERM mid-task: the task is interrupted, the process exits 0, its browsers are
    gone. kill -9 mid-task: its browsers go too, and the restart marks the task
    interrupted. That restart has no browser at all (BIGTHREE_BROWSER_EXECUTABLE points
    nowhere): it starts anyway, and a browser task fails with `browser_unavailable`."""
    require_chromium()
    data = tmp_path / "data"
    env = browser_env(fake_upstream.url, BIGTHREE_DRAIN_GRACE_S="0.5")
    first = start_service(tmp_path, env=env, data_dir=data)
    with httpx.Client(base_url=first.url, timeout=30) as http:
        name, model = new_browser(http, site)
        fake.script(model, [{"tool_calls": [cu("w", "wait_5_seconds")]}, {"text": "x"}] * 2)
        drained = submit(http, name, "wait")
        wait_until(lambda: len(fake.requests(model=model)) == 1, what="the action to start")
        browsers = chromium_under(first.popen.pid)
        assert browsers
        first.signal(signal.SIGTERM)
    assert first.wait(timeout=30) == 0
    wait_until(lambda: not still_running(browsers), what="the drained task's Chromium to exit")

    second = start_service(tmp_path, env=env, data_dir=data)
    try:
        with httpx.Client(base_url=second.url, timeout=30) as http:
            assert http.get(f"/v1/tasks/{drained['id']}").json()["state"] == "interrupted"
            killed = submit(http, name, "wait")
            wait_until(lambda: len(fake.requests(model=model)) == 2, what="the action to start")
            browsers = chromium_under(second.popen.pid)
            assert browsers
    finally:
        second.signal(signal.SIGKILL)
        second.wait()
    wait_until(lambda: not still_running(browsers), timeout=30, what="orphaned Chromium to exit")

    no_browser = {**env, "BIGTHREE_BROWSER_EXECUTABLE": str(tmp_path / "no-chromium")}
    third = start_service(tmp_path, env=no_browser, data_dir=data)
    try:
        with httpx.Client(base_url=third.url, timeout=30) as http:
            assert http.get(f"/v1/tasks/{killed['id']}").json()["state"] == "interrupted"
            failed = wait_task(http, submit(http, name, "look")["id"])
            assert failed["state"] == "failed"
            assert failed["error"]["type"] == "browser_unavailable"
            assert "no-chromium is not an executable file" in failed["error"]["message"]
    finally:
        third.stop()


# --- orchestration, the try-it, no browser ---------------------------------------------


def test_orchestrator_commands_a_browser_agent(
    http: httpx.Client, fake: FakeUpstreamClient, site: Site
) -> None:
    """An orchestrator creates a browser agent, commands it, reads where it ended
    (read_browser_screen: url, title, visible text, screenshot) and reports."""
    boss, boss_model = unique("boss"), unique("gpt-4o-mini")
    bot, bot_model = unique("scout"), f"{MODEL}-{unique('t')}"
    fake.script(
        boss_model,
        [
            {
                "tool_calls": [
                    {
                        "id": "o1",
                        "name": "create_agent",
                        "arguments": {
                            "name": bot,
                            "kind": "browser",
                            "model": bot_model,
                            "allowed_origins": [site.origin()],
                            "start_url": f"{site.origin()}/",
                        },
                    }
                ]
            },
            {
                "tool_calls": [
                    {
                        "id": "o2",
                        "name": "command_agent",
                        "arguments": {
                            "name": bot,
                            "prompt": "Click Go and read the status.",
                            "wait_s": 60,
                        },
                    }
                ]
            },
            {
                "tool_calls": [
                    {"id": "o3", "name": "read_browser_screen", "arguments": {"name": bot}}
                ]
            },
            {"text": "The page now says clicked."},
        ],
    )
    fake.script(
        bot_model,
        [
            {"tool_calls": [cu("c1", "click_at", x=500, y=450)]},
            {"text": "The status says clicked."},
        ],
    )
    response = http.post(
        "/v1/agents",
        json={"name": boss, "kind": "orchestrator", "provider": "openai", "model": boss_model},
    )
    assert response.status_code == 201, response.text
    task = wait_task(
        http, submit(http, boss, "What does the test site say after Go?")["id"], timeout=90
    )
    assert task["state"] == "succeeded", task
    agent = http.get(f"/v1/agents/{bot}").json()
    assert (agent["kind"], agent["provider"]) == ("browser", "gemini")
    assert agent["allowed_origins"] == [site.origin()]
    messages = fake.requests(model=boss_model)[3].body["messages"]
    results = {m["tool_call_id"]: m["content"] for m in messages if m["role"] == "tool"}
    assert "result: The status says clicked." in results["o2"]
    screen = results["o3"]
    assert f"url: {site.origin()}/" in screen and "title: Test site" in screen
    assert "visible text:\nclicked" in screen and "PNG, GET /v1/tasks/" in screen


def test_readme_try_it_with_the_default_script(http: httpx.Client, fake_upstream: Proc) -> None:
    """Nothing scripted: the fake navigates to its own demo page, clicks its button and
    answers with the incident number the page then shows."""
    name, _ = new_browser(http, None, allowed_origins=[fake_upstream.url])
    task = wait_task(http, submit(http, name, "Which service is down?")["id"], timeout=60)
    assert task["state"] == "succeeded", task
    assert "payments service is down" in task["result"]
    final = artifacts(http, task["id"])[-1]
    incident = final["url"].rsplit("incident=", 1)[1]
    assert f"incident {incident}" in task["result"] and incident in final["text"]


# --- the API's shapes (no browser needed) -------------------------------------------------


def test_create_browser_agent_validation(client: httpx.Client) -> None:
    """Provider must be gemini; browser fields only on browser agents; origins are origins;
    start_url must be allowed; defaults filled in."""
    base = {"kind": "browser", "provider": "gemini", "model": MODEL}

    def create(**body: Any) -> httpx.Response:
        return client.post("/v1/agents", json={"name": unique("b"), **base, **body})

    wrong = create(provider="openai")
    assert wrong.status_code == 422 and "must be 'gemini'" in wrong.json()["error"]["message"]
    wrong = create(fallbacks=[{"provider": "anthropic", "model": "claude-haiku-4-5"}])
    assert wrong.status_code == 422
    chat = client.post(
        "/v1/agents",
        json={"name": unique("c"), "kind": "chat", "model": "gpt-4o-mini", "allowed_origins": []},
    )
    assert chat.status_code == 422 and chat.json()["error"]["type"] == "validation_error"
    for origin in ("ftp://example.com", "http://example.com/path", "http://u:p@example.com"):
        bad = create(allowed_origins=[origin])
        assert bad.status_code == 422, origin
        assert bad.json()["error"]["fields"][0]["loc"][-1] == "allowed_origins"
    outside = create(allowed_origins=["https://example.com"], start_url="https://other.example/")
    assert outside.status_code == 422 and "start_url" in outside.json()["error"]["message"]
    made = create(allowed_origins=["HTTPS://Example.COM:443/"])
    assert made.status_code == 201, made.text
    agent = made.json()
    assert agent["allowed_origins"] == ["https://example.com"]
    assert agent["screen"] == {"width": 1440, "height": 900} and agent["start_url"] is None


def test_artifact_routes_need_auth_and_say_not_found(auth_service: Proc) -> None:
    """Behind auth like every route; unknown tasks and artifacts are 404 in the usual shape."""
    with httpx.Client(base_url=auth_service.url, timeout=10) as anonymous:
        denied = anonymous.get("/v1/tasks/abc123/artifacts")
        assert denied.status_code == 401 and denied.json()["error"]["type"] == "unauthorized"
    headers = {"authorization": f"Bearer {AUTH_KEY}"}
    with httpx.Client(base_url=auth_service.url, timeout=10, headers=headers) as http:
        missing = http.get("/v1/tasks/abc123/artifacts")
        assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
        name = unique("chat")
        http.post("/v1/agents", json={"name": name, "model": "gpt-4o-mini"})
        task = wait_task(http, submit(http, name, "hi")["id"])
        assert http.get(f"/v1/tasks/{task['id']}/artifacts").json() == {"artifacts": []}
        gone = http.get(f"/v1/tasks/{task['id']}/artifacts/ffff")
        assert gone.status_code == 404 and gone.json()["error"]["type"] == "not_found"
        assert "request_id" in gone.json()["error"]
