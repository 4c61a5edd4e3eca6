"""The orchestrator's tools: manage and command agents through the AgentManager (not HTTP).

Independent of any agent loop — the `orchestrator` kind runs it in its tool loop, and a
realtime session can hand the same `specs()` to a voice model and `call()` its tool calls.
Guard rails: the caller cannot delete, command or cancel itself; one toolset creates at most
`orchestrator_max_created_agents` agents; it creates orchestrators only when
`orchestrator_may_create_orchestrators` is set.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.agents.kinds.claude_code.availability import CLAUDE_CODE_PROVIDER
from app.agents.schemas import (
    AGENT_NAME_PATTERN,
    WORKSPACE_KINDS,
    Agent,
    AgentCreate,
    Task,
    TaskCreate,
)
from app.agents.service import AgentManager
from app.core.config import Settings
from app.core.names import MODEL_PATTERN, ProviderName
from app.tools.errors import ToolError
from app.tools.toolset import Tool, ToolResult, Toolset
from app.tools.workspace_tools import slice_lines

MAX_WAIT_S = 120.0
DEFAULT_MODELS: dict[str, str] = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-sonnet-4-5",
    "gemini": "gemini-2.5-flash",
}
BROWSER_MODEL = "gemini-2.5-computer-use-preview-10-2025"  # browser agents: Gemini only
SCREEN_TEXT_CHARS = 2000
TASK_ID = r"^[0-9a-f]{1,32}$"


class GuardRail(ToolError):
    kind = "guard_rail"


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoArgs(_Args):
    pass


class CreateAgentArgs(_Args):
    name: str = Field(pattern=AGENT_NAME_PATTERN, description="lowercase, digits, '-', '_'")
    kind: Literal["chat", "coder", "orchestrator", "claude_code", "browser"] = Field(
        "chat",
        description="chat: conversation; coder: edits files in its own workspace; "
        "claude_code: Claude Code (edits, searches, plans) in its own workspace, on anthropic; "
        "browser: works a web browser (Gemini computer use) on the allowed sites",
    )
    provider: ProviderName | None = Field(None, description="default: the orchestrator's")
    model: str | None = Field(None, pattern=MODEL_PATTERN, description="default: by provider")
    instructions: str = Field("", max_length=20_000, description="standing instructions")
    allowed_origins: list[str] | None = Field(
        None,
        max_length=100,
        description="browser only: sites it may reach, as scheme://host[:port] "
        "(default: the service's)",
    )
    start_url: str | None = Field(None, max_length=8192, description="browser only: first page")


class CommandAgentArgs(_Args):
    name: str = Field(pattern=AGENT_NAME_PATTERN)
    prompt: str = Field(min_length=1, description="what the agent should do")
    wait_s: float = Field(
        0, ge=0, le=MAX_WAIT_S, description="seconds to wait for the result (0: do not wait)"
    )


class CheckResultArgs(_Args):
    task_id: str | None = Field(None, pattern=TASK_ID, description="a task id")
    name: str | None = Field(None, pattern=AGENT_NAME_PATTERN, description="or: latest task of")

    @model_validator(mode="after")
    def _one_of(self) -> CheckResultArgs:
        if (self.task_id is None) == (self.name is None):
            raise ValueError("give exactly one of task_id or name")
        return self


class TaskIdArgs(_Args):
    task_id: str = Field(pattern=TASK_ID)


class AgentNameArgs(_Args):
    name: str = Field(pattern=AGENT_NAME_PATTERN)


class ScreenArgs(_Args):
    task_id: str | None = Field(None, pattern=TASK_ID, description="a browser task's id")
    name: str | None = Field(
        None, pattern=AGENT_NAME_PATTERN, description="or: a browser agent (its latest task)"
    )

    @model_validator(mode="after")
    def _one_of(self) -> ScreenArgs:
        if (self.task_id is None) == (self.name is None):
            raise ValueError("give exactly one of task_id or name")
        return self


class ReadAgentFileArgs(_Args):
    name: str = Field(pattern=AGENT_NAME_PATTERN, description="a coder or claude_code agent")
    path: str = Field(description="path inside that agent's workspace")


def describe_agent(a: Agent) -> str:
    return (
        f"{a.name}: {a.kind} on {a.provider}/{a.model}, {a.state.value}, "
        f"{a.tasks_total} tasks, {a.queued_tasks} queued, ${a.cost_usd:.4f}"
    )


def describe_task(t: Task) -> str:
    text = f"task {t.id} for {t.agent}: {t.state.value}"
    if t.result is not None:
        text += f"\nresult: {t.result}"
    if t.error is not None:
        text += f"\nerror ({t.error.type}): {t.error.message}"
    if t.files_changed:
        text += f"\nfiles changed: {', '.join(t.files_changed)}"
    return text


def _task_data(t: Task) -> dict[str, Any]:
    return {"task_id": t.id, "agent": t.agent, "state": t.state.value}


class OrchestratorToolset(Toolset):
    def __init__(self, manager: AgentManager, settings: Settings, caller: Agent | None) -> None:
        self._manager = manager
        self._settings = settings
        self._caller = caller
        self._created = 0
        super().__init__(
            [
                Tool("list_agents", "List the agents and their state.", NoArgs, self.list_agents),
                Tool("create_agent", "Create an agent.", CreateAgentArgs, self.create_agent),
                Tool(
                    "command_agent",
                    "Give an agent a task; returns the task id, or the result if wait_s allows.",
                    CommandAgentArgs,
                    self.command_agent,
                ),
                Tool(
                    "check_agent_result",
                    "State and result of a task (by id, or an agent's latest task).",
                    CheckResultArgs,
                    self.check_agent_result,
                ),
                Tool("cancel_task", "Cancel a queued or running task.", TaskIdArgs, self.cancel),
                Tool("delete_agent", "Delete an agent.", AgentNameArgs, self.delete_agent),
                Tool(
                    "read_agent_file",
                    "Read a text file from a coder or claude_code agent's workspace.",
                    ReadAgentFileArgs,
                    self.read_agent_file,
                ),
                Tool(
                    "read_browser_screen",
                    "What a browser agent's task ended on: URL, page title, visible text and "
                    "the final screenshot's id (by task id, or an agent's latest task).",
                    ScreenArgs,
                    self.read_browser_screen,
                ),
                Tool("report_costs", "Usage and cost per agent and in total.", NoArgs, self.costs),
            ]
        )

    def _not_me(self, name: str, action: str) -> None:
        if self._caller is not None and name == self._caller.name:
            raise GuardRail(f"an orchestrator cannot {action} itself")

    async def list_agents(self, _: NoArgs) -> ToolResult:
        agents = self._manager.list_agents()
        lines = [describe_agent(a) for a in agents] or ["(no agents)"]
        return ToolResult("\n".join(lines), data={"agents": [a.name for a in agents]})

    def _model_for(self, provider: str, model: str | None, kind: str = "chat") -> str:
        if model is not None:
            return model
        if kind == "browser":
            return BROWSER_MODEL
        caller = self._caller
        if caller is not None and caller.provider == provider:
            return caller.model
        return DEFAULT_MODELS[provider]

    async def create_agent(self, args: CreateAgentArgs) -> ToolResult:
        limit = self._settings.orchestrator_max_created_agents
        if self._created >= limit:
            raise GuardRail(f"this orchestrator may create at most {limit} agents per task")
        if args.kind == "orchestrator" and not self._settings.orchestrator_may_create_orchestrators:
            raise GuardRail("orchestrators may not create orchestrators here")
        default = self._caller.provider if self._caller else self._settings.default_provider
        if args.kind == "claude_code":
            default = CLAUDE_CODE_PROVIDER  # Claude Code only talks to Anthropic
        if args.kind == "browser":
            default = "gemini"  # the computer-use model
        provider = args.provider or default
        browser = (
            {"allowed_origins": args.allowed_origins, "start_url": args.start_url}
            if args.kind == "browser"
            else {}
        )
        try:
            spec = AgentCreate.model_validate(
                {
                    "name": args.name,
                    "kind": args.kind,
                    "provider": provider,
                    "model": self._model_for(provider, args.model, args.kind),
                    "instructions": args.instructions,
                    **browser,
                }
            )
        except ValidationError as exc:
            raise ToolError(f"invalid agent: {exc.errors()[0]['msg']}") from None
        agent = await self._manager.create_agent(spec)
        self._created += 1
        return ToolResult(f"created {describe_agent(agent)}", data={"agent": agent.name})

    async def command_agent(self, args: CommandAgentArgs) -> ToolResult:
        self._not_me(args.name, "command")
        task = await self._manager.submit(args.name, TaskCreate(prompt=args.prompt))
        if args.wait_s > 0:
            task = await self._manager.wait_for_task(task.id, args.wait_s)
        text = describe_task(task)
        if not task.state.finished:
            text += "\n(not finished yet: use check_agent_result with this task id)"
        return ToolResult(text, data=_task_data(task))

    async def check_agent_result(self, args: CheckResultArgs) -> ToolResult:
        if args.task_id is not None:
            task = await self._manager.get_task(args.task_id)
        else:
            assert args.name is not None
            latest = await self._manager.list_tasks(args.name, limit=1)
            if not latest:
                raise ToolError(f"{args.name} has no tasks yet")
            task = latest[0]
        return ToolResult(describe_task(task), data=_task_data(task))

    async def cancel(self, args: TaskIdArgs) -> ToolResult:
        task = await self._manager.get_task(args.task_id)
        self._not_me(task.agent, "cancel a task of")
        task = await self._manager.cancel_task(args.task_id)
        return ToolResult(describe_task(task), data=_task_data(task))

    async def delete_agent(self, args: AgentNameArgs) -> ToolResult:
        self._not_me(args.name, "delete")
        await self._manager.delete_agent(args.name)
        return ToolResult(f"deleted {args.name}", data={"agent": args.name})

    async def read_agent_file(self, args: ReadAgentFileArgs) -> ToolResult:
        agent = self._manager.get_agent(args.name)
        if agent.kind not in WORKSPACE_KINDS:  # said to the model in its own words
            raise ToolError(
                f"{args.name} is a {agent.kind} agent; only coders and claude_code agents have "
                "files"
            )
        text = await self._manager.read_agent_file(args.name, args.path)
        content, _, _, total = slice_lines(text, None, None)
        return ToolResult(content, data={"agent": args.name, "path": args.path, "lines": total})

    async def read_browser_screen(self, args: ScreenArgs) -> ToolResult:
        if args.task_id is not None:
            task_id = args.task_id
        else:
            assert args.name is not None
            agent = self._manager.get_agent(args.name)
            if agent.kind != "browser":
                raise ToolError(f"{args.name} is a {agent.kind} agent; only browser agents")
            latest = await self._manager.list_tasks(args.name, limit=1)
            if not latest:
                raise ToolError(f"{args.name} has no tasks yet")
            task_id = latest[0].id
        task, screen = await self._manager.final_screen(task_id)
        if screen is None:
            raise ToolError(f"task {task_id} ({task.state.value}) has no screenshot")
        text = (screen.text or "")[:SCREEN_TEXT_CHARS]
        lines = [
            f"task {task.id} for {task.agent}: {task.state.value}",
            f"url: {screen.url}",
            f"title: {screen.title or '(none)'}",
            f"screenshot: {screen.id} ({screen.width}x{screen.height} PNG, "
            f"GET /v1/tasks/{task.id}/artifacts/{screen.id})",
        ]
        if text:
            lines.append(f"visible text:\n{text}")
        data = {**_task_data(task), "url": screen.url, "artifact_id": screen.id}
        return ToolResult("\n".join(lines), data=data)

    async def costs(self, _: NoArgs) -> ToolResult:
        report = await self._manager.report_costs()
        lines = [
            f"{c.agent} ({c.provider}/{c.model}): ${c.cost_usd:.4f}, "
            f"{c.usage.input_tokens} in / {c.usage.output_tokens} out tokens"
            for c in report.by_agent
        ]
        lines.append(
            f"total: ${report.total_cost_usd:.4f}, {report.total_input_tokens} in / "
            f"{report.total_output_tokens} out tokens (all agents, deleted ones included)"
        )
        return ToolResult("\n".join(lines), data=report.model_dump())
