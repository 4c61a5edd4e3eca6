"""What an agent kind is: a loop that turns one task into a result through the LLM client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from app.agents.llm import CallContext, LLMClient
from app.agents.schemas import Agent, Task


@dataclass(frozen=True, slots=True)
class RunContext:
    llm: LLMClient
    call: CallContext
    history: Callable[
        [], Awaitable[list[Task]]
    ]  # the agent's earlier succeeded tasks, oldest first


class AgentKindRunner(Protocol):
    async def run(self, agent: Agent, task: Task, ctx: RunContext) -> str:
        """Run `task` to completion and return its result text."""
        ...
