"""`orchestrator` agents: a tool-use loop over the orchestrator toolset — they create,
command, check, cancel and delete other agents through the AgentManager.

The manager is built after its runners, so it is handed over with `bind()` once it exists.
"""

from __future__ import annotations

from app.agents.kinds.base import RunContext
from app.agents.kinds.coder import loop_limits
from app.agents.kinds.toolloop import ToolLoop, opening_messages
from app.agents.schemas import Agent, Task
from app.agents.service import AgentManager
from app.agents.toolset import OrchestratorToolset
from app.core.config import Settings

SYSTEM_PROMPT = """\
You are an orchestrator: you get work done by managing other agents through your tools \
(list_agents, create_agent, command_agent, check_agent_result, cancel_task, delete_agent, \
read_agent_file, read_browser_screen, report_costs). Agent kinds: `chat` answers questions; \
`coder` reads and writes files in its own workspace; `claude_code` is Claude Code (edits, \
searches, plans) in its own workspace; `browser` works a web browser on the sites it is \
allowed (read where its task ended with read_browser_screen). Reuse a suitable agent or \
create one, command it with a clear, self-contained prompt, then wait for or check its \
result. When the user's request \
is done, reply with a short summary, without calling tools."""


class OrchestratorRunner:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._loop = ToolLoop(loop_limits(settings))
        self._manager: AgentManager | None = None

    def bind(self, manager: AgentManager) -> None:
        self._manager = manager

    async def run(self, agent: Agent, task: Task, ctx: RunContext) -> str:
        if self._manager is None:
            raise RuntimeError("OrchestratorRunner.bind(manager) was never called")
        toolset = OrchestratorToolset(self._manager, self._settings, caller=agent)
        messages = await opening_messages(agent, task, ctx, SYSTEM_PROMPT)
        return await self._loop.run(agent, ctx, toolset, messages)
