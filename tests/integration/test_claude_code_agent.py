"""`claude_code` agents over real HTTP: the real Claude Code CLI (from the SDK's wheel) against
the fake Anthropic upstream, scripted step by step.

These need the `claude-code` extra; without it they skip with the reason (under CI, where
`make test` installs the extra, they fail instead).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.agents.kinds.claude_code.processes import alive
from app.fake_upstream.client import FakeUpstreamClient
from tests.conftest import provider_env, unique
from tests.support.api import create_agent, open_events, recv_until, submit, wait_task
from tests.support.claude_code import require_claude_code
from tests.support.procs import Proc, start_service, wait_until
from tests.support.wire import tool_results


def cc_env(fake_url: str, **extra: str) -> dict[str, str]:
    return {
        **provider_env(fake_url),
        # a breaker per model, opened by two failures: only the breaker tests fail twice
        "BIGTHREE_BREAKER_PER_MODEL": "true",
        "BIGTHREE_BREAKER_WINDOW_SIZE": "2",
        "BIGTHREE_BREAKER_MINIMUM_CALLS": "2",
        "BIGTHREE_CLAUDE_CODE_STOP_GRACE_S": "3",
        **extra,
    }


@pytest.fixture(scope="module")
def cc_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cc-data")


@pytest.fixture(scope="module")
def cc_service(cc_data: Path, fake_upstream: Proc) -> Iterator[Proc]:
    require_claude_code()
    proc = start_service(cc_data.parent, env=cc_env(fake_upstream.url), data_dir=cc_data)
    yield proc
    proc.stop()


@pytest.fixture
def http(cc_service: Proc) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cc_service.url, timeout=10.0) as client:
        yield client


def new_agent(http: httpx.Client, **extra: Any) -> tuple[str, str]:
    """A claude_code agent with a unique name and model; returns (name, model)."""
    name, model = unique("cc"), f"claude-sonnet-4-5-{unique('t')}"
    create_agent(http, name, model=model, kind="claude_code", provider="anthropic", **extra)
    return name, model


def workspace(data: Path, agent: str) -> Path:
    return (data / "workspaces" / agent).resolve()


def use(call_id: str, tool: str, **arguments: Any) -> dict[str, Any]:
    return {"tool_calls": [{"id": call_id, "name": tool, "arguments": arguments}]}


def events(http: httpx.Client, agent: str, type_: str | None = None) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"agent": agent, "limit": 1000}
    if type_:
        params["type"] = type_
    response = http.get("/v1/events", params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["events"]
    return found


def started_pids(http: httpx.Client, agent: str) -> list[int]:
    """The CLI processes the service started for `agent` (from its session events)."""
    return [e["payload"]["pid"] for e in events(http, agent, "claude_code.session")]


def last_user_texts(body: dict[str, Any]) -> str:
    """Every text a request carried in its messages (system reminders included)."""
    texts = []
    for message in body["messages"]:
        content = message["content"]
        if isinstance(content, str):
            texts.append(content)
            continue
        for block in content:
            if block.get("type") == "text":
                texts.append(block["text"])
    return "\n".join(texts)


# --- a coding run ---------------------------------------------------------------------------


def test_write_edit_read_round_trip(
    http: httpx.Client, fake: FakeUpstreamClient, cc_data: Path
) -> None:
    """Write, Edit, Read, answer: the file is on disk, every tool use is a tool.call /
    tool.result pair in order (framed by Claude Code's hook events), each tool result went
    back to the model under its call id, and cost, usage and turns land on the task and in
    GET /v1/costs."""
    name, model = new_agent(http)
    path = workspace(cc_data, name) / "notes" / "hello.txt"
    fake.script(
        model,
        [
            use("toolu_w", "Write", file_path=str(path), content="hello world\n"),
            use("toolu_e", "Edit", file_path=str(path), old_string="world", new_string="there"),
            use("toolu_r", "Read", file_path=str(path)),
            {"text": "Wrote, edited and read notes/hello.txt."},
        ],
    )
    done = wait_task(http, submit(http, name, "make a greeting file")["id"], timeout=60)
    assert done["state"] == "succeeded", done
    assert done["result"] == "Wrote, edited and read notes/hello.txt."
    assert path.read_text() == "hello there\n"
    assert done["files_changed"] == ["notes/hello.txt"]
    assert done["attempts"] == 4  # Claude Code's turns
    assert done["cost_usd"] > 0 and done["usage"]["input_tokens"] > 0

    tool_events = [
        (e["type"], e["payload"].get("tool") or e["payload"].get("tool_name"))
        for e in events(http, name)
        if e["type"] in {"tool.call", "tool.result", "PreToolUse", "PostToolUse"}
    ]
    expected = []
    for tool in ("Write", "Edit", "Read"):
        expected += [
            ("tool.call", tool),
            ("PreToolUse", tool),
            ("PostToolUse", tool),
            ("tool.result", tool),
        ]
    assert tool_events == expected
    results = [e["payload"] for e in events(http, name, "tool.result")]
    assert [r["is_error"] for r in results] == [False, False, False]
    assert "hello there" in results[2]["content"]
    kinds = [e["type"] for e in events(http, name)]
    assert kinds.index("claude_code.result") < kinds.index("task.succeeded")
    hook = events(http, name, "UserPromptSubmit")[0]
    assert hook["source"] == "claude_code" and hook["payload"]["prompt"] == "make a greeting file"
    assert hook["session_id"] == http.get(f"/v1/agents/{name}").json()["session_id"]

    sent = [r.body for r in fake.requests(model=model)]
    assert len(sent) == 4 and all(body["stream"] for body in sent)
    assert {t["name"] for t in sent[0]["tools"]} >= {"Read", "Write", "Edit"}
    assert "Bash" not in {t["name"] for t in sent[0]["tools"]}
    assert set(tool_results("anthropic", sent[3])) == {"toolu_w", "toolu_e", "toolu_r"}

    costs = http.get("/v1/costs").json()
    by_model = {(m["provider"], m["model"]): m for m in costs["by_model"]}
    assert by_model[("anthropic", model)]["cost_usd"] == pytest.approx(done["cost_usd"])
    agent = next(a for a in costs["by_agent"] if a["agent"] == name)
    assert agent["cost_usd"] == pytest.approx(done["cost_usd"])


def test_streaming_agent_sends_text_as_llm_delta(
    http: httpx.Client, fake: FakeUpstreamClient
) -> None:
    """With "stream": true, the assistant's text arrives as llm.delta events."""
    name, model = new_agent(http, stream=True)
    fake.script(model, [{"text": "one two three four five"}])
    done = wait_task(http, submit(http, name, "count")["id"], timeout=60)
    assert done["state"] == "succeeded", done
    deltas = events(http, name, "llm.delta")
    assert deltas and "".join(e["payload"]["text"] for e in deltas) == "one two three four five"


# --- permissions ----------------------------------------------------------------------------


def test_bash_is_off_by_default(
    http: httpx.Client, fake: FakeUpstreamClient, cc_data: Path
) -> None:
    """A scripted Bash use on an agent without Bash: refused (the model is told, a
    permission.denied event says why) and nothing runs — the marker never appears."""
    name, model = new_agent(http)
    marker = workspace(cc_data, name) / "marker"
    fake.script(
        model,
        [use("toolu_b", "Bash", command=f"touch {marker}", description="touch"), {"text": "ok"}],
    )
    done = wait_task(http, submit(http, name, "run a command")["id"], timeout=60)
    assert done["state"] == "succeeded", done
    denied = events(http, name, "permission.denied")
    assert [(d["payload"]["tool"], d["payload"]["rule"]) for d in denied] == [("Bash", "tool_set")]
    result = events(http, name, "tool.result")[0]["payload"]
    assert result["tool"] == "Bash" and result["is_error"]
    content, is_error = tool_results("anthropic", fake.requests(model=model)[1].body)["toolu_b"]
    assert is_error and "Bash" in str(content)
    assert not marker.exists()


def test_bash_runs_when_the_agent_lists_it(
    http: httpx.Client, fake: FakeUpstreamClient, cc_data: Path
) -> None:
    """An agent whose allowed_tools lists Bash runs the command (the marker appears)."""
    name, model = new_agent(http, allowed_tools=["Bash", "Read"])
    marker = workspace(cc_data, name) / "marker"
    fake.script(
        model,
        [use("toolu_b", "Bash", command=f"touch {marker}", description="touch"), {"text": "ok"}],
    )
    done = wait_task(http, submit(http, name, "run a command")["id"], timeout=60)
    assert done["state"] == "succeeded", done
    assert marker.exists()
    assert not events(http, name, "permission.denied")
    assert http.get(f"/v1/agents/{name}").json()["allowed_tools"] == ["Bash", "Read"]


def test_writes_outside_the_workspace_are_refused(
    http: httpx.Client, fake: FakeUpstreamClient, cc_data: Path, tmp_path: Path
) -> None:
    """Write to an absolute path outside, and to <workspace>/../x: both refused by the
    permission layer (PreToolUse), with events; neither file exists."""
    name, model = new_agent(http)
    outside = tmp_path / "outside.txt"
    climbing = workspace(cc_data, name) / ".." / "escape.txt"
    fake.script(
        model,
        [
            use("toolu_1", "Write", file_path=str(outside), content="x"),
            use("toolu_2", "Write", file_path=str(climbing), content="x"),
            {"text": "tried"},
        ],
    )
    done = wait_task(http, submit(http, name, "write outside")["id"], timeout=60)
    assert done["state"] == "succeeded", done
    denied = [e["payload"] for e in events(http, name, "permission.denied")]
    assert [(d["call_id"], d["rule"], d["by"]) for d in denied] == [
        ("toolu_1", "workspace", "hook"),
        ("toolu_2", "workspace", "hook"),
    ]
    assert not outside.exists() and not climbing.resolve().exists()
    assert done["files_changed"] == []


def test_max_turns_and_the_budget_end_the_run(
    http: httpx.Client, fake: FakeUpstreamClient, cc_data: Path
) -> None:
    """max_turns=1 and a model that wants a second turn: failed `max_turns`. A turn that
    costs more than BIGTHREE_TASK_MAX_COST_USD (5 USD): failed `cost_limit`, with the cost
    on the task."""
    name, model = new_agent(http, max_turns=1)
    path = workspace(cc_data, name) / "a.txt"
    fake.script(model, [use("toolu_1", "Write", file_path=str(path), content="x"), {"text": "no"}])
    turns = wait_task(http, submit(http, name, "write")["id"], timeout=60)
    assert turns["state"] == "failed" and turns["error"]["type"] == "max_turns", turns

    name, model = new_agent(http)
    costly = {"usage": {"input_tokens": 2_000_000, "output_tokens": 10}}
    fake.script(model, [{**use("toolu_1", "Write", file_path="a.txt", content="x"), **costly}])
    budget = wait_task(http, submit(http, name, "spend")["id"], timeout=60)
    assert budget["state"] == "failed" and budget["error"]["type"] == "cost_limit", budget
    assert budget["cost_usd"] >= 5.0


# --- sessions -------------------------------------------------------------------------------


def test_session_continues_across_tasks_and_new_session_starts_clean(
    http: httpx.Client, fake: FakeUpstreamClient
) -> None:
    """The second task resumes the first's Claude Code session (its request carries the
    first exchange); a task with new_session starts a new session without it."""
    name, model = new_agent(http)
    first = wait_task(http, submit(http, name, "remember the word PINEAPPLE")["id"], timeout=60)
    assert first["state"] == "succeeded", first
    session = http.get(f"/v1/agents/{name}").json()["session_id"]
    assert session

    second = wait_task(http, submit(http, name, "which word?")["id"], timeout=60)
    assert second["state"] == "succeeded", second
    assert http.get(f"/v1/agents/{name}").json()["session_id"] == session
    sent = fake.requests(model=model)
    assert "PINEAPPLE" in last_user_texts(sent[-1].body)
    assert sent[-1].headers["x-claude-code-session-id"] == session

    fresh = wait_task(http, submit(http, name, "start over", new_session=True)["id"], timeout=60)
    assert fresh["state"] == "succeeded" and fresh["new_session"] is True
    newest = fake.requests(model=model)[-1]
    assert "PINEAPPLE" not in last_user_texts(newest.body)
    renewed = http.get(f"/v1/agents/{name}").json()["session_id"]
    assert renewed and renewed != session
    assert newest.headers["x-claude-code-session-id"] == renewed


# --- stopping -------------------------------------------------------------------------------


def _wait_started(http: httpx.Client, agent: str) -> int:
    wait_until(lambda: bool(started_pids(http, agent)), timeout=30, what="the CLI to start")
    return started_pids(http, agent)[0]


def test_cancel_mid_run_interrupts_and_leaves_no_process(
    http: httpx.Client, fake: FakeUpstreamClient
) -> None:
    """Cancelling a task whose model call hangs: the run is interrupted, the task is
    cancelled, and the CLI process the service started is gone."""
    name, model = new_agent(http)
    fake.script(model, [{"latency_s": 120, "text": "too late"}])
    task = submit(http, name, "take your time")
    pid = _wait_started(http, name)
    assert alive(pid)
    cancelled = http.post(f"/v1/tasks/{task['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    done = wait_task(http, task["id"], timeout=30)
    assert done["state"] == "cancelled", done
    assert [e["payload"]["reason"] for e in events(http, name, "claude_code.stopping")] == [
        "cancel"
    ]
    wait_until(lambda: not alive(pid), timeout=15, what=f"CLI {pid} to end")


def test_deadline_mid_run_times_out_and_leaves_no_process(
    http: httpx.Client, fake: FakeUpstreamClient
) -> None:
    """A task deadline reached while the model call hangs: timed_out, and no process left."""
    name, model = new_agent(http)
    fake.script(model, [{"latency_s": 120, "text": "too late"}])
    task = submit(http, name, "take your time", timeout_s=4)
    pid = _wait_started(http, name)
    done = wait_task(http, task["id"], timeout=30)
    assert done["state"] == "timed_out", done
    assert [e["payload"]["reason"] for e in events(http, name, "claude_code.stopping")] == [
        "deadline"
    ]
    wait_until(lambda: not alive(pid), timeout=15, what=f"CLI {pid} to end")


def test_kill_9_and_drain_leave_no_process(
    fake_upstream: Proc, fake: FakeUpstreamClient, tmp_path: Path
) -> None:
    """kill -9 of the service mid-run: its CLI dies with it; after a restart the task is
    interrupted, the agent keeps its session id and no PID file is left. Then SIGTERM
    mid-run: the drain interrupts the task (seen on the event stream) and ends the CLI."""
    require_claude_code()
    data = tmp_path / "data"
    service = start_service(tmp_path, env=cc_env(fake_upstream.url), data_dir=data)
    try:
        with httpx.Client(base_url=service.url, timeout=10.0) as client:
            name, model = new_agent(client)
            fake.script(model, [{"latency_s": 120, "text": "too late", "repeat": 2}])
            task = submit(client, name, "take your time")
            pid = _wait_started(client, name)
            session = client.get(f"/v1/agents/{name}").json()["session_id"]
        service.signal(signal.SIGKILL)
        service.wait(timeout=10)
        wait_until(lambda: not alive(pid), timeout=15, what=f"CLI {pid} to die with the service")
    finally:
        service.stop()
    restarted = start_service(tmp_path, env=cc_env(fake_upstream.url), data_dir=data)
    try:
        with httpx.Client(base_url=restarted.url, timeout=10.0) as client:
            after = client.get(f"/v1/tasks/{task['id']}").json()
            assert after["state"] == "interrupted", after
            assert client.get(f"/v1/agents/{name}").json()["session_id"] == session
            assert list((data / "claude_code" / "runs").glob("*.pid")) == []

            second = submit(client, name, "take your time again")
            wait_until(lambda: len(started_pids(client, name)) == 2, timeout=30)
            pid = started_pids(client, name)[1]
            last = client.get("/v1/events", params={"limit": 1}).json()["last_seq"]
        with open_events(restarted.url, agent=name, after_seq=last) as ws:
            restarted.signal(signal.SIGTERM)
            seen = recv_until(ws, lambda e: e["type"] == "task.interrupted", timeout=30)
        assert seen[-1]["task_id"] == second["id"]
        assert "claude_code.stopping" in [e["type"] for e in seen]
        assert restarted.wait(timeout=30) == 0
        assert not alive(pid)
    finally:
        restarted.stop()


# --- resilience -----------------------------------------------------------------------------


def test_overloaded_529_counts_on_the_breaker_which_then_fails_fast(
    http: httpx.Client, fake: FakeUpstreamClient
) -> None:
    """529 from the upstream: the CLI retries once (BIGTHREE_CLAUDE_CODE_MAX_RETRIES=1, the
    default), the service not at all, and the task fails `overloaded`; two such runs open the
    model's anthropic breaker, and the next task fails `circuit_open` without starting the
    CLI."""
    name, model = new_agent(http)
    fake.script(model, [{"status": 529, "repeat": -1}])
    for _ in range(2):
        failed = wait_task(http, submit(http, name, "hello")["id"], timeout=60)
        assert failed["state"] == "failed", failed
        assert (failed["error"]["type"], failed["error"]["details"]["status"]) == (
            "overloaded",
            529,
        )
    assert len(fake.requests(model=model)) == 4
    fast = wait_task(http, submit(http, name, "hello")["id"], timeout=30)
    assert fast["state"] == "failed" and fast["error"]["type"] == "circuit_open", fast
    assert len(fake.requests(model=model)) == 4
    assert len(started_pids(http, name)) == 2  # no CLI for the third task
    breaker = next(
        b
        for p in http.get("/v1/providers").json()["providers"]
        for b in p["breakers"]
        if b["name"] == f"anthropic/{model}"
    )
    assert breaker["state"] == "open"


def test_rate_limited_429_with_retry_after_is_retried_by_the_cli_then_fails(
    http: httpx.Client, fake: FakeUpstreamClient
) -> None:
    """429 + Retry-After: the CLI retries once, after the server's wait (two requests), then
    the task fails `rate_limited` with the status; the service adds no retry of its own."""
    name, model = new_agent(http)
    fake.script(model, [{"status": 429, "headers": {"retry-after": "1"}, "repeat": -1}])
    failed = wait_task(http, submit(http, name, "hello")["id"], timeout=60)
    assert failed["state"] == "failed", failed
    assert failed["error"]["type"] == "rate_limited"
    assert failed["error"]["details"]["status"] == 429
    sent = fake.requests(model=model)
    assert len(sent) == 2


# --- creating agents ------------------------------------------------------------------------


def test_agent_fields_are_validated(http: httpx.Client) -> None:
    """claude_code fields are shown on the agent; other kinds refuse them; claude_code
    refuses another provider and fallbacks; new_session is for claude_code only."""
    name, _ = new_agent(http, disallowed_tools=["Glob"], permission_mode="acceptEdits", max_turns=7)
    agent = http.get(f"/v1/agents/{name}").json()
    assert (agent["disallowed_tools"], agent["permission_mode"], agent["max_turns"]) == (
        ["Glob"],
        "acceptEdits",
        7,
    )
    assert agent["allowed_tools"] is None and agent["session_id"] is None
    bad = [
        {"kind": "chat", "provider": "openai", "max_turns": 3},
        {"kind": "claude_code", "provider": "openai"},
        {
            "kind": "claude_code",
            "provider": "anthropic",
            "fallbacks": [{"provider": "anthropic", "model": "claude-haiku-4-5"}],
        },
        {"kind": "claude_code", "provider": "anthropic", "permission_mode": "yolo"},
    ]
    for body in bad:
        response = http.post(
            "/v1/agents", json={"name": unique("bad"), "model": "claude-sonnet-4-5", **body}
        )
        assert response.status_code == 422, (body, response.text)
    chat = unique("chat")
    create_agent(http, chat)
    refused = http.post(f"/v1/agents/{chat}/tasks", json={"prompt": "x", "new_session": True})
    assert refused.status_code == 409  # the agent's kind, not the request, does not fit


def test_orchestrator_creates_and_commands_a_claude_code_agent(
    http: httpx.Client, fake: FakeUpstreamClient
) -> None:
    """An orchestrator creates a claude_code agent (on anthropic, though the orchestrator
    runs on openai) and commands it; the Claude Code run answers."""
    boss, boss_model = unique("boss"), unique("gpt-4o-mini")
    dev = unique("dev")
    fake.script(
        boss_model,
        [
            use("o1", "create_agent", name=dev, kind="claude_code"),
            use("o2", "command_agent", name=dev, prompt="say hi", wait_s=60),
            {"text": "done"},
        ],
    )
    create_agent(http, boss, model=boss_model, kind="orchestrator", provider="openai")
    task = submit(http, boss, "get a claude_code agent to say hi")
    done = wait_task(http, task["id"], timeout=90)
    assert done["state"] == "succeeded", done
    agent = http.get(f"/v1/agents/{dev}").json()
    assert (agent["kind"], agent["provider"]) == ("claude_code", "anthropic")
    task = http.get(f"/v1/agents/{dev}/tasks").json()["tasks"][0]
    assert (task["state"], task["result"]) == ("succeeded", "echo: say hi")
    results = tool_results("openai", fake.requests(model=boss_model)[2].body)
    assert "echo: say hi" in results["o2"]
