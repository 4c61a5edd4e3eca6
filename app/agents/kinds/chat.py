"""`chat` agents: a conversation. Each task is one user turn; earlier turns are context."""

from __future__ import annotations

from app.agents.kinds.base import RunContext
from app.agents.schemas import Agent, Task
from app.providers.base import CompletionRequest, Message


class ChatRunner:
    async def run(self, agent: Agent, task: Task, ctx: RunContext) -> str:
        messages: list[Message] = []
        if agent.instructions:
            messages.append(Message("system", agent.instructions))
        messages += await ctx.history()
        messages.append(Message("user", task.prompt))
        completion = await ctx.llm.complete(
            agent.provider,
            CompletionRequest(model=agent.model, messages=messages),
            ctx.call,
            fallbacks=agent.fallbacks,
            stream=agent.stream,
        )
        return completion.text
