"""The orchestrator toolset over a real AgentManager (SQLite file, event bus), no HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.agents.kinds.base import RunContext
from app.agents.schemas import Agent, AgentCreate, Task
from app.agents.service import AgentManager
from app.agents.toolset import OrchestratorToolset
from app.core.config import Settings
from app.store.engine import create_engine
from tests.support.manager import running_manager


class EchoRunner:
    """Answers with the prompt; a prompt starting with 'block' waits until cancelled."""

    async def run(self, agent: Agent, task: Task, ctx: RunContext) -> str:
        if task.prompt.startswith("block"):
            await asyncio.Event().wait()
        if agent.kind == "coder":
            workspace = Path(ctx_data_dir[0]) / "workspaces" / agent.name
            workspace.mkdir(parents=True, exist_ok=True)
            (workspace / "README.md").write_text(task.prompt)
        return f"did: {task.prompt}"


ctx_data_dir: list[str] = []


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[AgentManager]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        orchestrator_max_created_agents=2,
    )
    ctx_data_dir[:] = [str(tmp_path)]
    runner = EchoRunner()
    runners = {"chat": runner, "coder": runner, "orchestrator": runner}
    engine = create_engine(settings.resolved_database_url)
    async with running_manager(settings, engine, runners) as mgr:
        yield mgr


async def _boss(manager: AgentManager) -> tuple[OrchestratorToolset, Agent]:
    boss = await manager.create_agent(
        AgentCreate(name="boss", kind="orchestrator", provider="anthropic", model="claude-x")
    )
    return OrchestratorToolset(manager, manager._settings, caller=boss), boss


async def test_specs_cover_the_orchestrator_tools(manager: AgentManager) -> None:
    """The toolset offers the nine tools, each with an object schema."""
    tools, _ = await _boss(manager)
    specs = {s.name: s for s in tools.specs()}
    assert list(specs) == [
        "list_agents",
        "create_agent",
        "command_agent",
        "check_agent_result",
        "cancel_task",
        "delete_agent",
        "read_agent_file",
        "read_browser_screen",
        "report_costs",
    ]
    assert specs["command_agent"].parameters["required"] == ["name", "prompt"]
    assert specs["command_agent"].parameters["properties"]["wait_s"]["maximum"] == 120


async def test_create_command_wait_check_and_read(manager: AgentManager) -> None:
    """Create a coder (inheriting the caller's provider/model), command it, wait for the
    result, check it by agent name, and read the file it wrote."""
    tools, _ = await _boss(manager)
    created = await tools.call("create_agent", {"name": "docs-bot", "kind": "coder"})
    assert not created.is_error, created
    agent = manager.get_agent("docs-bot")
    assert (agent.kind, agent.provider, agent.model) == ("coder", "anthropic", "claude-x")
    done = await tools.call("command_agent", {"name": "docs-bot", "prompt": "ideas", "wait_s": 10})
    assert done.data["state"] == "succeeded" and "result: did: ideas" in done.content
    checked = await tools.call("check_agent_result", {"name": "docs-bot"})
    assert checked.data["task_id"] == done.data["task_id"]
    read = await tools.call("read_agent_file", {"name": "docs-bot", "path": "README.md"})
    assert read.content == "ideas"
    escape = await tools.call("read_agent_file", {"name": "docs-bot", "path": "../../etc/passwd"})
    assert escape.is_error and escape.data["error"] == "path_refused"
    listed = await tools.call("list_agents", {})
    assert listed.data["agents"] == ["boss", "docs-bot"]


async def test_command_without_wait_returns_the_task_id(manager: AgentManager) -> None:
    """Without wait_s the call returns at once with a task id that can be cancelled."""
    tools, _ = await _boss(manager)
    await tools.call("create_agent", {"name": "slow", "provider": "openai"})
    assert manager.get_agent("slow").model == "gpt-4o-mini"
    queued = await tools.call("command_agent", {"name": "slow", "prompt": "block please"})
    assert queued.data["state"] in {"queued", "running"} and "not finished yet" in queued.content
    cancelled = await tools.call("cancel_task", {"task_id": queued.data["task_id"]})
    assert cancelled.data["state"] == "cancelled"
    short = await tools.call(
        "command_agent", {"name": "slow", "prompt": "block again", "wait_s": 0.05}
    )
    assert short.data["state"] == "running"


async def test_guard_rails(manager: AgentManager) -> None:
    """No deleting, commanding or cancelling itself; no orchestrators; at most N creations."""
    tools, _ = await _boss(manager)
    for name, args, reason in [
        ("delete_agent", {"name": "boss"}, "cannot delete itself"),
        ("command_agent", {"name": "boss", "prompt": "loop"}, "cannot command itself"),
        ("create_agent", {"name": "boss2", "kind": "orchestrator"}, "may not create orchestrators"),
    ]:
        result = await tools.call(name, args)
        assert result.is_error and reason in result.content and result.data["error"] == "guard_rail"
    assert not (await tools.call("create_agent", {"name": "a1"})).is_error
    assert not (await tools.call("create_agent", {"name": "a2"})).is_error
    third = await tools.call("create_agent", {"name": "a3"})
    assert third.is_error and "at most 2 agents" in third.content
    assert [a.name for a in manager.list_agents()] == ["a1", "a2", "boss"]
    assert not (await tools.call("delete_agent", {"name": "a1"})).is_error


async def test_manager_errors_become_tool_errors(manager: AgentManager) -> None:
    """Unknown agents, duplicate names and bad ids come back as readable tool errors."""
    tools, _ = await _boss(manager)
    missing = await tools.call("command_agent", {"name": "ghost", "prompt": "hi"})
    assert missing.is_error and missing.data["error"] == "not_found"
    await tools.call("create_agent", {"name": "twin"})
    dup = await tools.call("create_agent", {"name": "twin"})
    assert dup.is_error and dup.data["error"] == "conflict"
    bad = await tools.call("check_agent_result", {"task_id": "XYZ"})
    assert bad.is_error and bad.data["error"] == "invalid_arguments"
    both = await tools.call("check_agent_result", {})
    assert both.is_error and "exactly one" in both.content
    chat = await tools.call("read_agent_file", {"name": "twin", "path": "x"})
    assert chat.is_error and "only coders and claude_code agents have files" in chat.content


async def test_report_costs(manager: AgentManager) -> None:
    """report_costs lists each agent and the total from the manager."""
    tools, _ = await _boss(manager)
    report = await tools.call("report_costs", {})
    assert "boss (anthropic/claude-x): $0.0000" in report.content
    assert "total: $0.2500, 10 in / 5 out tokens" in report.content
    assert report.data["total_cost_usd"] == 0.25
