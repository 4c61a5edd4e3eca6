"""`coder` agents: a tool-use loop over the agent's own workspace directory (no shell).

The workspace is `<data_dir>/workspaces/<agent name>`, or the agent's `workspace` — a
directory the operator allowed through BIGTHREE_WORKSPACE_ROOTS, checked again on every use.
"""

from __future__ import annotations

from app.agents.kinds.base import RunContext, TaskFailed
from app.agents.kinds.toolloop import LoopLimits, ToolLoop, opening_messages
from app.agents.schemas import Agent, Task
from app.core.config import Settings
from app.tools.errors import WorkspaceError
from app.tools.workspace import Workspace, WorkspaceLimits, agent_root
from app.tools.workspace_tools import WorkspaceTools

SYSTEM_PROMPT = """\
You are a coding agent working in a project directory (your workspace). Inspect and change \
files only through your tools: list_files, read_file, write_file, edit_file, search_files, \
delete_file. Paths are relative to the workspace root; there is no shell. Prefer edit_file \
for small changes to existing files and read a file before editing it. When the work is \
done, reply with a short summary of what you changed, without calling tools."""


def open_workspace(settings: Settings, agent: Agent) -> Workspace:
    """The agent's workspace, under the service's limits (raises `WorkspaceError`)."""
    root = agent_root(settings.data_dir, agent.name, agent.workspace, settings.workspace_roots)
    limits = WorkspaceLimits(
        max_file_bytes=settings.workspace_max_file_bytes,
        quota_bytes=settings.workspace_quota_bytes,
    )
    return Workspace(root, limits)


def loop_limits(settings: Settings) -> LoopLimits:
    return LoopLimits(settings.tool_loop_max_steps, settings.task_max_cost_usd)


class CoderRunner:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._loop = ToolLoop(loop_limits(settings))

    async def run(self, agent: Agent, task: Task, ctx: RunContext) -> str:
        try:
            workspace = open_workspace(self._settings, agent)
        except (WorkspaceError, OSError) as exc:
            message = f"the workspace cannot be used: {exc}"
            raise TaskFailed("workspace_unavailable", message) from exc
        toolset = WorkspaceTools(workspace, ctx.files_changed).toolset()
        messages = await opening_messages(agent, task, ctx, SYSTEM_PROMPT)
        return await self._loop.run(agent, ctx, toolset, messages)
