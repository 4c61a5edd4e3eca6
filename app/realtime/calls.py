"""The model's function calls, run through the orchestrator toolset (in-process, not HTTP),
and the tasks they start, reported when they finish.

A call starts when its arguments are complete (`response.function_call_arguments.done`, or
`response.output_item.done` from a server that skips it); each runs in its own task, so a
slow tool never stalls the session. Its output goes back as a `function_call_output` item;
`Turns` then starts the next response once no call is running and no response is active.
`command_agent` never waits in a session (`wait_s` is hidden and dropped): the session
watches the task and, when it ends, tells the client (`task.finished`) and the model (a
system message), which asks for a response of its own.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from app.agents.schemas import Task
from app.agents.toolset import describe_task
from app.realtime.context import SessionContext
from app.realtime.tasks import TaskWatcher
from app.realtime.turns import Turns
from app.tools.toolset import ToolResult, Toolset

NOTICE_MAX_CHARS = 8000
OUTPUT_EVENT_CHARS = 2000
TASK_NOTE = "\nA [task update] message will follow when it finishes: no need to poll."
INTERRUPTED = "not run: the user interrupted the response"


class Emit(Protocol):
    def __call__(
        self, type_: str, payload: dict[str, Any], *, agent: Any = ..., task_id: Any = ...
    ) -> None: ...


class ToolCalls:
    def __init__(
        self,
        ctx: SessionContext,
        toolset: Toolset,
        turns: Turns,
        *,
        to_client: Callable[[dict[str, Any]], None],
        send_up: Callable[[dict[str, Any]], Awaitable[None]],
        spawn: Callable[[Coroutine[Any, Any, None]], object],
        emit: Emit,
    ) -> None:
        self._ctx = ctx
        self._toolset = toolset
        self._turns = turns
        self._to_client = to_client
        self._send_up = send_up
        self._spawn = spawn
        self._emit = emit
        self._names: dict[str, str] = {}
        self._seen: set[str] = set()
        self.watcher = TaskWatcher(ctx.hub, ctx.manager, self._task_finished)
        self.count = 0
        self.tasks_started: list[str] = []

    def remember(self, item: Any) -> None:
        """Note a function call's name from `response.output_item.added`."""
        if isinstance(item, dict) and item.get("type") == "function_call" and item.get("name"):
            for key in (item.get("call_id"), item.get("id")):
                if key:
                    self._names[str(key)] = str(item["name"])

    def start(self, call_id: Any, name: Any, arguments: Any) -> None:
        """Run a complete call once (later duplicates of the same call id are ignored)."""
        call_id = str(call_id or "")
        if not call_id or call_id in self._seen:
            return
        self._seen.add(call_id)
        name = str(name or self._names.get(call_id) or "")
        if self._turns.interrupted:
            self._spawn(self._output(call_id, INTERRUPTED))
            return
        args = _parse(arguments)
        if name == "command_agent" and args is not None:
            args.pop("wait_s", None)
        self._turns.tool_started(call_id)
        self._to_client(
            {"type": "tool_call.started", "call_id": call_id, "name": name, "arguments": args}
        )
        self._spawn(self._run(call_id, name, args))

    async def _run(self, call_id: str, name: str, args: dict[str, Any] | None) -> None:
        started = time.perf_counter()
        try:
            if args is None:
                result = ToolResult.error("arguments must be a JSON object", "invalid_arguments")
            else:  # shielded: a session that ends mid-call must not cut an agent change short
                call = asyncio.ensure_future(self._toolset.call(name, args))
                self._ctx.keep(call)
                result = await asyncio.shield(call)
            data = result.data
            task_id = data.get("task_id")
            watch = name == "command_agent" and not result.is_error and isinstance(task_id, str)
            output = result.content + (TASK_NOTE if watch else "")
            self._to_client(
                {
                    "type": "tool_call.finished",
                    "call_id": call_id,
                    "name": name,
                    "is_error": result.is_error,
                    "output": output,
                    "agent": data.get("agent"),
                    "task_id": task_id,
                    "task_state": data.get("state"),
                }
            )
            await self._output(call_id, output)
            self._record(call_id, name, args, result, time.perf_counter() - started)
            if watch:
                assert isinstance(task_id, str)
                self.tasks_started.append(task_id)
                await self.watcher.watch(task_id)
        finally:
            self._turns.tool_finished(call_id)

    async def _output(self, call_id: str, output: str) -> None:
        item = {"type": "function_call_output", "call_id": call_id, "output": output}
        await self._send_up({"type": "conversation.item.create", "item": item})

    def _record(
        self, call_id: str, name: str, args: Any, result: ToolResult, duration_s: float
    ) -> None:
        self.count += 1
        outcome = "error" if result.is_error else "ok"
        self._ctx.metrics.realtime_tool_calls.labels(self._ctx.tool_label(name), outcome).inc()
        self._emit(
            "realtime.tool_call",
            {
                "call_id": call_id,
                "name": name,
                "arguments": args,
                "is_error": result.is_error,
                "output": result.content[:OUTPUT_EVENT_CHARS],
                "duration_s": round(duration_s, 4),
            },
            agent=result.data.get("agent"),
            task_id=result.data.get("task_id"),
        )

    def _task_finished(self, task: Task) -> None:
        self._to_client(
            {
                "type": "task.finished",
                "task_id": task.id,
                "agent": task.agent,
                "state": task.state.value,
                "result": task.result,
                "error": task.error.model_dump() if task.error else None,
                "cost_usd": task.cost_usd,
            }
        )
        self._spawn(self._notify_model(task))

    async def _notify_model(self, task: Task) -> None:
        text = "[task update] " + describe_task(task)[:NOTICE_MAX_CHARS]
        content = [{"type": "input_text", "text": text}]
        item = {"type": "message", "role": "system", "content": content}
        await self._send_up({"type": "conversation.item.create", "item": item})
        self._turns.want()


def _parse(arguments: Any) -> dict[str, Any] | None:
    if arguments is None or arguments == "":
        return {}
    try:
        value = json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
