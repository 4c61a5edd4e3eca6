"""The tool-use loop shared by `coder` and `orchestrator` agents.

    messages = [system, earlier turns..., user prompt]
    repeat: ask the model (with the toolset's specs)
            no tool calls  → the task's result is the model's text
            tool calls     → run each through the toolset, append the results, ask again

Stops, each a distinct task outcome:
  - the model answers without tool calls: succeeded, with its text as the result;
  - it still wants tools after `max_steps` model calls: failed, `step_limit`;
  - it wants tools but the task has spent `max_cost_usd`: failed, `cost_limit` (checked
    after each model call, so one call can overshoot; a final answer is never thrown away);
  - the task deadline: timed_out (enforced by the AgentManager).
Every call and result is an event (`tool.call`, `tool.result`, previews truncated); a tool
that refuses or fails answers the model with `is_error` and the loop goes on.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from app.agents.kinds.base import RunContext, TaskFailed
from app.agents.schemas import Agent, Task
from app.providers.base import CompletionRequest, Message, ToolCall
from app.tools.toolset import ToolResult, Toolset

PREVIEW_CHARS = 2000
RESULT_MAX_CHARS = 100_000


@dataclass(frozen=True, slots=True)
class LoopLimits:
    max_steps: int
    max_cost_usd: float  # 0: no cap


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """`text`, cut to `limit` characters with a note of how many were left off."""
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more chars]"


def _for_model(result: ToolResult) -> str:
    content = result.content
    if len(content) > RESULT_MAX_CHARS:
        cut = len(content) - RESULT_MAX_CHARS
        content = content[:RESULT_MAX_CHARS] + f"\n[truncated: {cut} more characters]"
    return content


def check_cost(ctx: RunContext, cap: float, step: int) -> None:
    """`cost_limit` once the task has spent `cap` USD (0: no cap)."""
    if cap > 0 and ctx.call.cost_usd >= cap:
        raise TaskFailed(
            "cost_limit",
            f"the task spent ${ctx.call.cost_usd:.4f}, reaching its ${cap:g} cap "
            f"after {step} steps (BIGTHREE_TASK_MAX_COST_USD)",
            cost_usd=ctx.call.cost_usd,
            max_cost_usd=cap,
        )


async def opening_messages(agent: Agent, task: Task, ctx: RunContext, system: str) -> list[Message]:
    """System prompt (kind prompt + the agent's instructions), earlier turns, the prompt."""
    instructions = f"{system}\n\n{agent.instructions}" if agent.instructions else system
    messages = [Message("system", instructions)]
    messages += await ctx.history()
    messages.append(Message("user", task.prompt))
    return messages


class ToolLoop:
    def __init__(self, limits: LoopLimits) -> None:
        self._limits = limits

    async def run(
        self,
        agent: Agent,
        ctx: RunContext,
        toolset: Toolset,
        messages: list[Message],
    ) -> str:
        specs = toolset.specs()
        limits = self._limits
        for step in range(1, limits.max_steps + 1):
            completion = await ctx.llm.complete(
                agent.provider,
                CompletionRequest(model=agent.model, messages=list(messages), tools=specs),
                ctx.call,
                fallbacks=agent.fallbacks,
                stream=agent.stream,
            )
            if not completion.tool_calls:
                return completion.text
            self._check_cost(ctx, step)
            if step == limits.max_steps:
                break
            messages.append(Message("assistant", completion.text or None, completion.tool_calls))
            for call in completion.tool_calls:
                messages.append(await self._run_tool(ctx, toolset, call, step))
        raise TaskFailed(
            "step_limit",
            f"the model still wanted tools after {limits.max_steps} steps "
            "(BIGTHREE_TOOL_LOOP_MAX_STEPS)",
            max_steps=limits.max_steps,
        )

    def _check_cost(self, ctx: RunContext, step: int) -> None:
        check_cost(ctx, self._limits.max_cost_usd, step)

    async def _run_tool(
        self, ctx: RunContext, toolset: Toolset, call: ToolCall, step: int
    ) -> Message:
        raw = call.raw_arguments or json.dumps(dict(call.arguments))
        ids: dict[str, Any] = {"tool": call.name, "call_id": call.id, "step": step}
        ctx.emit("tool.call", {**ids, "arguments": preview(raw)})
        started = time.perf_counter()
        if call.arguments_error is not None:
            result = ToolResult.error(
                f"the arguments are not a JSON object ({call.arguments_error}); send JSON",
                "invalid_arguments",
            )
        else:
            result = await toolset.call(call.name, call.arguments)
        ctx.emit(
            "tool.result",
            {
                **ids,
                "is_error": result.is_error,
                "content": preview(result.content),
                "data": result.data,
                "duration_s": round(time.perf_counter() - started, 4),
            },
        )
        return Message(
            "tool",
            _for_model(result),
            tool_call_id=call.id,
            tool_name=call.name,
            is_error=result.is_error,
        )
