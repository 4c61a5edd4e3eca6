"""The `bigthree` client commands, run as a user runs them (subprocess) against a real server."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import httpx

from app.fake_upstream.client import FakeUpstreamClient
from tests.conftest import AUTH_KEY, unique
from tests.support.api import create_agent, submit, wait_task
from tests.support.claude_code import require_claude_code
from tests.support.procs import BIGTHREE, Proc


def bigthree(
    service: Proc, *args: str, key: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BIGTHREE_URL": service.url, "COLUMNS": "200"}
    env.pop("BIGTHREE_API_KEY", None)
    if key is not None:
        env["BIGTHREE_API_KEY"] = key
    return subprocess.run(
        [*BIGTHREE, *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_agents_create_ls_show_rm(service: Proc) -> None:
    """`agents create|ls|show|rm` manage agents; a bad name is exit 3 with the rule in words."""
    name = unique("cli-agent")
    created = bigthree(service, "agents", "create", name, "--model", "gpt-4o-mini")
    assert created.returncode == 0 and name in created.stdout, created.stderr
    assert name in {a["name"] for a in as_json(bigthree(service, "agents", "ls", "--json"))}
    assert name in bigthree(service, "agents", "ls").stdout  # the table
    shown = as_json(bigthree(service, "agents", "show", name, "--json"))
    assert shown["model"] == "gpt-4o-mini" and shown["kind"] == "chat"
    bad = bigthree(service, "agents", "create", "Bad Name", "--model", "m")
    assert bad.returncode == 3
    assert "validation_error" in bad.stderr and "starting and ending with a letter" in bad.stderr
    assert bigthree(service, "agents", "rm", name).returncode == 0
    gone = bigthree(service, "agents", "show", name)
    assert gone.returncode == 3 and "not_found" in gone.stderr


def test_agents_create_browser(service: Proc, client: httpx.Client) -> None:
    """`agents create --kind browser` sends its origins (repeatable), start_url and screen;
    they arrive as given, and `agents show` lists them."""
    name = unique("cli-browser")
    created = bigthree(
        service, "agents", "create", name, "--kind", "browser", "--provider", "gemini",
        "--model", "gemini-2.5-computer-use-preview-10-2025",
        "--allowed-origin", "https://b.example", "--allowed-origin", "http://127.0.0.1:8765",
        "--start-url", "http://127.0.0.1:8765/start", "--screen", "1280x800",
    )  # fmt: skip
    assert created.returncode == 0 and "browser, gemini/" in created.stdout, created.stderr
    agent = client.get(f"/v1/agents/{name}").json()
    assert agent["kind"] == "browser" and agent["provider"] == "gemini"
    assert agent["allowed_origins"] == ["http://127.0.0.1:8765", "https://b.example"]
    assert agent["start_url"] == "http://127.0.0.1:8765/start"
    assert agent["screen"] == {"width": 1280, "height": 800}
    assert agent["workspace"] is None and agent["allowed_tools"] is None
    shown = bigthree(service, "agents", "show", name).stdout
    assert "1280x800" in shown and "https://b.example" in shown


def test_agents_create_claude_code(service: Proc, client: httpx.Client) -> None:
    """`agents create --kind claude_code` sends its tools (repeatable), permission mode and
    max turns; the provider defaults to anthropic on the server."""
    require_claude_code()
    name = unique("cli-cc")
    created = bigthree(
        service, "agents", "create", name, "--kind", "claude_code", "--model",
        "claude-sonnet-4-5", "--allowed-tool", "Read", "--allowed-tool", "Edit",
        "--disallowed-tool", "Bash", "--permission-mode", "acceptEdits", "--max-turns", "7",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    agent = client.get(f"/v1/agents/{name}").json()
    assert (agent["kind"], agent["provider"]) == ("claude_code", "anthropic")
    assert agent["allowed_tools"] == ["Read", "Edit"] and agent["disallowed_tools"] == ["Bash"]
    assert agent["permission_mode"] == "acceptEdits" and agent["max_turns"] == 7
    assert agent["allowed_origins"] is None and agent["screen"] is None


def test_agents_create_refusals_are_readable(service: Proc) -> None:
    """A malformed --screen is bad usage (exit 2); what the server refuses (a browser agent
    on openai, 422) is exit 3 with its message; neither prints a traceback nor creates."""
    name = unique("cli-refused")
    browser = ("agents", "create", name, "--kind", "browser", "--model", "m")
    bad_screen = bigthree(service, *browser, "--provider", "gemini", "--screen", "1280by800")
    assert bad_screen.returncode == 2
    assert "--screen" in bad_screen.stderr and "expected WIDTHxHEIGHT" in bad_screen.stderr
    too_small = bigthree(service, *browser, "--provider", "gemini", "--screen", "100x800")
    assert too_small.returncode == 3 and "screen.width" in too_small.stderr
    refused = bigthree(service, *browser, "--provider", "openai")
    assert refused.returncode == 3
    assert "validation_error" in refused.stderr and "must be 'gemini'" in refused.stderr
    for result in (bad_screen, too_small, refused):
        assert "Traceback" not in result.stderr and result.stdout == ""
    assert bigthree(service, "agents", "show", name).returncode == 3


def test_run_prints_the_result_and_the_events(service: Proc, client: httpx.Client) -> None:
    """`run` shows the task's events as they arrive and prints the result; exit 0."""
    name = unique("cli-run")
    create_agent(client, name)
    result = bigthree(service, "run", name, "hello from the cli")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "echo: hello from the cli"
    for event_type in ("task.queued", "task.running", "llm.request", "task.succeeded"):
        assert event_type in result.stderr
    task = as_json(bigthree(service, "run", name, "again", "--json"))
    assert task["state"] == "succeeded" and task["result"] == "echo: again"


def test_run_exits_non_zero_when_the_task_fails(
    service: Proc, client: httpx.Client, fake: FakeUpstreamClient
) -> None:
    """A task that fails makes `run` exit 1 (with --json too); an unknown agent exits 3."""
    name, model = unique("cli-fail"), unique("cli-fail-model")
    create_agent(client, name, model=model)
    fake.script(model, [{"status": 400, "repeat": 2}])
    result = bigthree(service, "run", name, "this will fail")
    assert result.returncode == 1
    assert "failed" in result.stderr and "bad_request" in result.stderr
    failed = bigthree(service, "run", name, "and this", "--json")
    assert failed.returncode == 1 and json.loads(failed.stdout)["state"] == "failed"
    missing = bigthree(service, "run", "no-such-agent", "x")
    assert missing.returncode == 3 and "not_found" in missing.stderr


def test_tasks_ls_show_cancel(
    service: Proc, client: httpx.Client, fake: FakeUpstreamClient
) -> None:
    """`tasks ls|show|cancel` list by agent and state, show one, cancel a running one."""
    name, model = unique("cli-tasks"), unique("cli-slow")
    create_agent(client, name, model=model)
    done = wait_task(client, submit(client, name, "quick")["id"])
    fake.script(model, [{"text": "slow", "latency_s": 30}])
    slow = submit(client, name, "slow")
    wait_task(client, slow["id"], {"running"})
    listed = as_json(bigthree(service, "tasks", "ls", "--agent", name, "--json"))
    assert [t["id"] for t in listed] == [slow["id"], done["id"]]
    only_done = bigthree(service, "tasks", "ls", "--agent", name, "--state", "succeeded", "--json")
    assert [t["id"] for t in as_json(only_done)] == [done["id"]]
    cancelled = bigthree(service, "tasks", "cancel", slow["id"])
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
    shown = as_json(bigthree(service, "tasks", "show", slow["id"], "--json"))
    assert shown["state"] == "cancelled"
    assert done["id"] in bigthree(service, "tasks", "show", done["id"]).stdout


def test_events_tail_filters_by_task(service: Proc, client: httpx.Client) -> None:
    """`events tail --task ID --json` prints that task's events, one JSON object a line."""
    name = unique("cli-tail")
    create_agent(client, name)
    task = wait_task(client, submit(client, name, "tail me")["id"])
    result = bigthree(service, "events", "tail", "--task", task["id"], "--count", "3", "--json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(events) == 3 and {e["task_id"] for e in events} == {task["id"]}
    assert events[0]["type"] == "task.queued"
    after = bigthree(
        service, "events", "tail", "--task", task["id"], "--after-seq", str(events[0]["seq"]),
        "--type", "task.*", "--count", "1", "--json",
    )  # fmt: skip
    assert json.loads(after.stdout)["type"] == "task.running"


def test_costs_and_providers(service: Proc, client: httpx.Client) -> None:
    """`costs` and `providers` report; `providers breaker` forces one model's breaker open
    and closes it again."""
    name, model = unique("cli-cost"), unique("cli-breaker")
    create_agent(client, name, model=model)
    wait_task(client, submit(client, name, "spend")["id"])
    costs = as_json(bigthree(service, "costs", "--json"))
    assert name in {a["agent"] for a in costs["by_agent"]}
    assert "by provider/model" in bigthree(service, "costs").stdout
    providers = as_json(bigthree(service, "providers", "--json"))
    assert {p["name"] for p in providers} >= {"openai", "anthropic", "gemini"}
    opened = bigthree(service, "providers", "breaker", "openai", "open", "--model", model)
    assert opened.returncode == 0 and "forced_open" in opened.stdout, opened.stderr
    breakers = {
        b["name"]: b["state"] for p in as_json(bigthree(service, "providers", "--json"))
        for b in p["breakers"]
    }  # fmt: skip
    assert breakers[f"openai/{model}"] == "forced_open"
    closed = bigthree(service, "providers", "breaker", "openai", "close", "--model", model)
    assert closed.returncode == 0 and "closed" in closed.stdout


def test_api_key_from_the_environment(auth_service: Proc) -> None:
    """BIGTHREE_API_KEY authenticates; a wrong key is exit 3 with `unauthorized`."""
    assert bigthree(auth_service, "agents", "ls", key=AUTH_KEY).returncode == 0
    refused = bigthree(auth_service, "agents", "ls", key="wrong-key-0123456789")
    assert refused.returncode == 3 and "unauthorized" in refused.stderr


def test_unreachable_server_is_exit_3(service: Proc) -> None:
    """Nothing listening: exit 3 and a message naming the URL."""
    dead = Proc(service.popen, "http://127.0.0.1:9", service.log_path)
    result = bigthree(dead, "agents", "ls")
    assert result.returncode == 3 and "127.0.0.1:9" in result.stderr
