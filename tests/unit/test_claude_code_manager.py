"""claude_code agents in the AgentManager (real SQLite file, no CLI): what creating one
checks, what is stored with it, and the Claude Code session id kept across a restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from app.agents.kinds import base
from app.agents.kinds.claude_code import availability
from app.agents.schemas import Agent, AgentCreate, Task, TaskCreate, TaskState
from app.core.config import Settings
from app.core.errors import InvalidInput
from app.store.engine import create_engine
from app.store.migrations import head_revision, upgrade_database
from tests.support.manager import running_manager


class SessionRunner:
    """Stands in for Claude Code: reports a session id per run (a new one on new_session)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, bool]] = []

    async def run(self, agent: Agent, task: Task, ctx: base.RunContext) -> str:
        self.seen.append((agent.session_id, task.new_session))
        fresh = task.new_session or agent.session_id is None
        await ctx.remember_session(f"session-{task.prompt}" if fresh else agent.session_id)
        return "ok"


def settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, **extra)  # type: ignore[call-arg]


def spec(**extra: object) -> AgentCreate:
    fields: dict[str, object] = {"name": "dev1", "kind": "claude_code", "model": "claude-x"}
    return AgentCreate.model_validate({**fields, **extra})


async def test_without_the_extra_creating_one_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(availability, "sdk_installed", lambda: False)
    s = settings(tmp_path)
    async with running_manager(s, create_engine(s.resolved_database_url), {}) as manager:
        with pytest.raises(InvalidInput) as refused:
            await manager.create_agent(spec())
    assert "pip install 'big-three-agents[claude-code]'" in refused.value.message
    assert refused.value.status_code == 422


async def test_a_cli_that_cannot_run_is_refused(tmp_path: Path) -> None:
    s = settings(tmp_path, claude_code_cli_path=tmp_path / "missing-claude")
    if not availability.sdk_installed():
        pytest.skip(f"the claude-code extra is not installed: {availability.INSTALL_HINT}")
    async with running_manager(s, create_engine(s.resolved_database_url), {}) as manager:
        with pytest.raises(InvalidInput, match="missing-claude"):
            await manager.create_agent(spec())
        with pytest.raises(InvalidInput, match="provider must be 'anthropic'"):
            await manager.create_agent(spec(name="dev2", provider="openai"))


async def test_session_id_and_options_survive_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session id a run reports is stored with the agent at once: the next task gets
    it, a restarted service still has it; new_session is stored with its task."""
    monkeypatch.setattr(availability, "unavailable_reason", lambda _s: None)
    s = settings(tmp_path)
    runner = SessionRunner()
    runners = {"claude_code": runner}
    async with running_manager(s, create_engine(s.resolved_database_url), runners) as manager:
        await manager.create_agent(
            spec(allowed_tools=["Read", "Bash"], permission_mode="plan", max_turns=9)
        )
        first = await manager.submit("dev1", TaskCreate(prompt="a"))
        await manager.wait_for_task(first.id, 10)
        second = await manager.submit("dev1", TaskCreate(prompt="b"))
        await manager.wait_for_task(second.id, 10)
        assert manager.get_agent("dev1").session_id == "session-a"
    async with running_manager(s, create_engine(s.resolved_database_url), runners) as manager:
        agent = manager.get_agent("dev1")
        assert agent.session_id == "session-a"
        assert (agent.allowed_tools, agent.permission_mode, agent.max_turns) == (
            ["Read", "Bash"],
            "plan",
            9,
        )
        fresh = await manager.submit("dev1", TaskCreate(prompt="c", new_session=True))
        done = await manager.wait_for_task(fresh.id, 10)
        assert done.state == TaskState.SUCCEEDED and done.new_session is True
        assert manager.get_agent("dev1").session_id == "session-c"
    assert runner.seen == [(None, False), ("session-a", False), ("session-a", True)]


async def test_an_older_database_gains_the_columns(tmp_path: Path) -> None:
    """A database at the revision before claude_code's (0004) gets agents.options,
    agents.session_id and tasks.new_session; existing tasks read new_session false."""
    s = settings(tmp_path)
    url = s.resolved_database_url
    assert (await upgrade_database(url, "0004")).after == "0004"
    engine = create_engine(url)
    async with engine.connect() as conn:
        agents = await conn.run_sync(
            lambda c: {x["name"] for x in inspect(c).get_columns("agents")}
        )
    assert "options" not in agents
    assert (await upgrade_database(url)).after == head_revision()
    async with engine.connect() as conn:
        agents = await conn.run_sync(
            lambda c: {x["name"] for x in inspect(c).get_columns("agents")}
        )
        tasks = await conn.run_sync(lambda c: {x["name"] for x in inspect(c).get_columns("tasks")})
    await engine.dispose()
    assert {"options", "session_id"} <= agents and "new_session" in tasks


def test_check_config_says_whether_the_cli_is_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OK with the CLI's version when it runs; ERROR when BIGTHREE_CLAUDE_CODE_CLI_PATH names
    nothing runnable; WARN (an optional extra) when the SDK is not installed."""
    from app.core.config_check import check_settings

    def finding(s: Settings) -> str:
        return next(str(f) for f in check_settings(s, port=1) if "claude_code" in f.message)

    broken = finding(settings(tmp_path, claude_code_cli_path=tmp_path / "nope"))
    assert broken.startswith("ERROR") and str(tmp_path / "nope") in broken
    if availability.sdk_installed():
        usable = finding(settings(tmp_path))
        assert usable.startswith("OK") and "Claude Code" in usable
    monkeypatch.setattr(availability, "sdk_installed", lambda: False)
    missing = finding(settings(tmp_path))
    assert missing.startswith("WARN") and availability.INSTALL_HINT in missing


def test_bypass_permissions_is_refused_for_a_root_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """Claude Code will not skip permissions as root: say so at creation, not at run time."""
    monkeypatch.setattr(availability, "unavailable_reason", lambda _s: None)
    monkeypatch.setattr(availability.os, "geteuid", lambda: 0)
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    with pytest.raises(InvalidInput, match="as root"):
        availability.check_claude_code_agent(
            s, spec(permission_mode="bypassPermissions"), "anthropic"
        )
    monkeypatch.setattr(availability.os, "geteuid", lambda: 1000)
    options = availability.check_claude_code_agent(
        s, spec(permission_mode="bypassPermissions"), "anthropic"
    )
    assert options.permission_mode == "bypassPermissions"
