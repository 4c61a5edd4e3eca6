"""What an agent kind is: a loop that turns one task into a result through the LLM client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.agents.llm import CallContext, LLMClient
from app.agents.schemas import Agent, Task
from app.providers.base import Message


async def _no_session(session_id: str | None) -> None:
    return None


@dataclass(frozen=True, slots=True)
class RunContext:
    llm: LLMClient
    call: CallContext
    # the agent's earlier succeeded tasks as messages (user prompt, assistant result),
    # oldest first
    history: Callable[[], Awaitable[list[Message]]]
    emit: Callable[[str, dict[str, Any]], None] = lambda type_, payload: None  # task event
    files_changed: list[str] = field(default_factory=list)  # workspace paths the run changed
    # store the agent's upstream session id (claude_code: the Claude Code session), at once
    remember_session: Callable[[str | None], Awaitable[None]] = _no_session


class TaskFailed(Exception):
    """Raised by a runner to end its task `failed` with a typed, readable error
    (e.g. `step_limit`, `cost_limit`)."""

    def __init__(self, type_: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.type = type_
        self.message = message
        self.details = details


class AgentKindRunner(Protocol):
    async def run(self, agent: Agent, task: Task, ctx: RunContext) -> str:
        """Run `task` to completion and return its result text."""
        ...
