"""`orchestrator` agents over real HTTP: they create and command other agents through tool
calls, observed on the events WebSocket; guard rails hold."""

from __future__ import annotations

from typing import Any

import httpx

from app.fake_upstream.client import FakeUpstreamClient
from tests.conftest import unique
from tests.support.api import create_agent, open_events, recv_until, submit, wait_task
from tests.support.procs import Proc
from tests.support.wire import tool_results


def call(call_id: str, tool: str, **arguments: Any) -> dict[str, Any]:
    return {"id": call_id, "name": tool, "arguments": arguments}


def test_orchestrator_creates_and_commands_a_coder(
    service: Proc, client: httpx.Client, fake: FakeUpstreamClient
) -> None:
    """'Create a coder called docs-bot and have it write README.md listing three ideas':
    the orchestrator creates the coder, commands it, waits, reads the file and reports —
    every step visible, in order, on the events WebSocket."""
    boss, boss_model = unique("boss"), unique("claude-sonnet-4-5")
    bot, bot_model = unique("docs-bot"), unique("gpt-4o-mini")
    readme = "# Ideas\n\n1. A garden planner\n2. A recipe scaler\n3. A bike-route finder\n"
    fake.script(
        boss_model,
        [
            {
                "tool_calls": [
                    call(
                        "o1",
                        "create_agent",
                        name=bot,
                        kind="coder",
                        provider="openai",
                        model=bot_model,
                    )
                ]
            },
            {
                "tool_calls": [
                    call(
                        "o2",
                        "command_agent",
                        name=bot,
                        wait_s=30,
                        prompt="Write README.md listing three ideas.",
                    )
                ]
            },
            {"tool_calls": [call("o3", "read_agent_file", name=bot, path="README.md")]},
            {"text": f"{bot} wrote README.md with three ideas."},
        ],
    )
    fake.script(
        bot_model,
        [
            {"tool_calls": [call("c1", "write_file", path="README.md", content=readme)]},
            {"text": "Wrote README.md."},
        ],
    )
    create_agent(client, boss, model=boss_model, kind="orchestrator", provider="anthropic")
    after = client.get("/v1/events", params={"limit": 1}).json()["last_seq"]
    with open_events(service.url, after_seq=after) as ws:
        task = submit(
            client,
            boss,
            f"Create a coder agent called {bot} and have it write README.md listing three ideas.",
        )
        seen = recv_until(
            ws,
            lambda e: e["type"] == "task.succeeded" and e["agent"] == boss,
            timeout=30,
        )

    def step(e: dict[str, Any]) -> tuple[str, str | None, str | None]:
        return e["type"], e["agent"], e["payload"].get("tool")

    steps = [step(e) for e in seen if not e["type"].startswith("llm.")]
    expected = [
        ("task.queued", boss, None),
        ("task.running", boss, None),
        ("tool.call", boss, "create_agent"),
        ("agent.created", bot, None),
        ("tool.result", boss, "create_agent"),
        ("tool.call", boss, "command_agent"),
        ("task.queued", bot, None),
        ("task.running", bot, None),
        ("tool.call", bot, "write_file"),
        ("tool.result", bot, "write_file"),
        ("task.succeeded", bot, None),
        ("tool.result", boss, "command_agent"),
        ("tool.call", boss, "read_agent_file"),
        ("tool.result", boss, "read_agent_file"),
        ("task.succeeded", boss, None),
    ]
    assert steps == expected
    bot_done = next(e for e in seen if e["type"] == "task.succeeded" and e["agent"] == bot)
    assert bot_done["payload"]["files_changed"] == ["README.md"]

    done = wait_task(client, task["id"])
    assert done["state"] == "succeeded"
    assert done["result"] == f"{bot} wrote README.md with three ideas."
    sent = [r.body for r in fake.requests(model=boss_model)]
    commanded, _ = tool_results("anthropic", sent[2])["o2"]
    assert "succeeded" in commanded and "result: Wrote README.md." in commanded
    assert "files changed: README.md" in commanded
    assert tool_results("anthropic", sent[3])["o3"] == (readme, False)
    agent = client.get(f"/v1/agents/{bot}").json()
    assert (agent["kind"], agent["provider"], agent["model"]) == ("coder", "openai", bot_model)
    assert client.get(f"/v1/agents/{bot}/files/README.md").json()["content"] == readme


def test_orchestrator_guard_rails(client: httpx.Client, fake: FakeUpstreamClient) -> None:
    """It cannot delete itself, create an orchestrator, or create more than the configured
    number of agents; refusals are tool errors and the task still succeeds."""
    boss, model = unique("boss"), unique("gpt-4o-mini")
    names = [unique(f"helper{i}") for i in range(6)]
    fake.script(
        model,
        [
            {
                "tool_calls": [
                    call("d", "delete_agent", name=boss),
                    call("o", "create_agent", name=unique("sub"), kind="orchestrator"),
                    *(call(f"c{i}", "create_agent", name=n) for i, n in enumerate(names)),
                    call("r", "report_costs"),
                ]
            },
            {"text": "done"},
        ],
    )
    create_agent(client, boss, model=model, kind="orchestrator")
    done = wait_task(client, submit(client, boss, "try everything")["id"])
    assert done["state"] == "succeeded", done
    messages = fake.requests(model=model)[1].body["messages"]
    results = {m["tool_call_id"]: m["content"] for m in messages if m["role"] == "tool"}
    assert results["d"] == "an orchestrator cannot delete itself"
    assert results["o"] == "orchestrators may not create orchestrators here"
    assert all(results[f"c{i}"].startswith("created ") for i in range(5))
    assert results["c5"] == "this orchestrator may create at most 5 agents per task"
    assert f"{boss} (openai/{model})" in results["r"] and "total: $" in results["r"]
    live = {a["name"] for a in client.get("/v1/agents").json()["agents"]}
    assert boss in live and set(names[:5]) <= live and names[5] not in live
    flags = {
        e["payload"]["call_id"]: e["payload"]["is_error"]
        for e in client.get("/v1/events", params={"agent": boss, "type": "tool.result"}).json()[
            "events"
        ]
    }
    assert [k for k, is_error in flags.items() if is_error] == ["d", "o", "c5"]
