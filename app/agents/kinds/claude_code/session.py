"""One run of the Claude Code CLI through the Claude Agent SDK: one task, one turn of the
agent's Claude Code session. This module imports the SDK (the `claude-code` extra).

The SDK wants its client connected, used and disconnected in one asyncio task, so a run is a
task of its own (`ClaudeCodeSession.run`); whoever waits for it asks it to stop
(`request_stop`) rather than cancelling it:

    connect           resume the agent's session (a lost one: a new session, and an event)
    query, read       messages → events, until the result message
    stop or deadline  interrupt; no result within the grace → SIGKILL the process group
    always            disconnect (bounded), kill what is left of the group, account usage
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import structlog
from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    HookContext,
    HookInput,
    HookJSONOutput,
    HookMatcher,
    PermissionResultAllow,
    PermissionResultDeny,
    ResultMessage,
    StreamEvent,
    SystemMessage,
    ToolPermissionContext,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)
from claude_agent_sdk.types import HookEvent, PermissionMode, PermissionResult

from app.agents.kinds.claude_code.outcome import RunResult, StreamedUsage
from app.agents.kinds.claude_code.processes import ClaudeProcesses
from app.agents.kinds.claude_code.translate import RunRecorder

log = structlog.get_logger(__name__)

FORWARDED_HOOKS: tuple[HookEvent, ...] = (
    "PostToolUse",
    "PostToolUseFailure",
    "UserPromptSubmit",
    "Stop",
    "SubagentStart",
    "SubagentStop",
    "PreCompact",
    "Notification",
    "PermissionRequest",
)
LOST_SESSION = "No conversation found"
DISCONNECT_S = 3.0  # on top of the stop grace: the SDK's own close waits for the CLI to exit
STDERR_LINES = 20

StopReason = Literal["cancel", "deadline"]


@dataclass(frozen=True, slots=True)
class RunSpec:
    """Everything one run needs, decided before the CLI starts (no SDK types)."""

    run_id: str
    prompt: str
    model: str
    cwd: Path
    launcher: Path
    env: dict[str, str]
    tools: tuple[str, ...]
    disallowed_tools: tuple[str, ...]
    permission_mode: PermissionMode
    max_turns: int
    max_budget_usd: float | None
    system_append: str
    resume: str | None
    stop_grace_s: float
    deadline_s: float | None  # seconds left when the run starts; None: unbounded
    secrets: tuple[str, ...] = ()  # values to blank out of stderr before it is shown


@dataclass(slots=True)
class SessionOutcome:
    result: RunResult | None = None
    stopped: StopReason | None = None
    killed: list[int] = field(default_factory=list)
    session_id: str | None = None
    streamed: StreamedUsage = field(default_factory=StreamedUsage)
    error: BaseException | None = None  # the CLI failed (not an API error: those are results)


class ClaudeCodeSession:
    def __init__(
        self,
        spec: RunSpec,
        *,
        recorder: RunRecorder,
        processes: ClaudeProcesses,
        emit: Callable[[str, dict[str, Any]], None],
        remember_session: Callable[[str | None], Awaitable[None]],
    ) -> None:
        self.spec = spec
        self.recorder = recorder
        self.processes = processes
        self._emit = emit
        self._remember_session = remember_session
        self._stderr: deque[str] = deque(maxlen=STDERR_LINES)
        self._timer: asyncio.Timeout | None = None
        self._client: ClaudeSDKClient | None = None
        self._stop: StopReason | None = None
        self.outcome = SessionOutcome()

    # --- control from other tasks ----------------------------------------------------------

    def request_stop(self) -> None:
        """Stop the run as soon as possible (interrupt, then kill after the grace)."""
        if self._stop is None:
            self._stop = "cancel"
            if self._timer is not None and not self._timer.expired():
                self._timer.reschedule(asyncio.get_running_loop().time())

    # --- the run ---------------------------------------------------------------------------

    async def run(self) -> SessionOutcome:
        """Run the turn to its end; never raises (failures are in the outcome)."""
        outcome = self.outcome
        loop = asyncio.get_running_loop()
        deadline = None if self.spec.deadline_s is None else loop.time() + self.spec.deadline_s
        try:
            try:
                async with asyncio.timeout_at(deadline) as timer:
                    self._timer = timer  # request_stop() moves it to now
                    if self._stop is not None:  # asked to stop before it began
                        timer.reschedule(loop.time())
                    try:
                        client = await self._connect()
                        await client.query(self.spec.prompt)
                        outcome.result = await self._read(client)
                    finally:
                        self._timer = None
            except TimeoutError:
                outcome.stopped = self._stop or "deadline"
                await self._halt(self._client)
        except Exception as exc:  # the CLI failed to start or died
            outcome.error = exc
        finally:
            await self._close(self._client)
            self.recorder.flush_text()
        return outcome

    async def _connect(self) -> ClaudeSDKClient:
        self._client = ClaudeSDKClient(self._options(self.spec.resume))
        try:
            await self._client.connect()
        except Exception as exc:
            if self.spec.resume is None or LOST_SESSION not in str(exc):
                raise
            await self._close(self._client)
            self._emit(
                "claude_code.session_lost",
                {"session_id": self.spec.resume, "reason": "Claude Code has no such session"},
            )
            self._client = ClaudeSDKClient(self._options(None))
            await self._client.connect()
        return self._client

    async def _read(self, client: ClaudeSDKClient) -> RunResult | None:
        async for message in client.receive_response():
            if isinstance(message, StreamEvent):
                self._stream_event(message)
            elif isinstance(message, AssistantMessage):
                stream = message.parent_tool_use_id
                self.recorder.assistant_message(message.message_id, stream)
                for block in message.content:
                    if isinstance(block, ToolUseBlock):
                        self.recorder.tool_use(block.id, block.name, block.input, stream)
            elif isinstance(message, UserMessage) and isinstance(message.content, list):
                for result in message.content:
                    if isinstance(result, ToolResultBlock):
                        self.recorder.tool_result(
                            result.tool_use_id, bool(result.is_error), result.content
                        )
            elif isinstance(message, SystemMessage) and message.subtype == "init":
                await self._started(message.data)
            elif isinstance(message, ResultMessage):
                return self._result(message)
        return None

    async def _started(self, data: dict[str, Any]) -> None:
        session_id = data.get("session_id")
        if isinstance(session_id, str):
            self.outcome.session_id = session_id
            await self._remember_session(session_id)
        self._emit(
            "claude_code.session",
            {
                "session_id": session_id,
                "resumed": session_id is not None and session_id == self.spec.resume,
                "pid": self.processes.pid_of(self.spec.run_id),
                "model": data.get("model"),
                "tools": data.get("tools"),
                "permission_mode": data.get("permissionMode"),
                "cwd": data.get("cwd"),
                "claude_code_version": data.get("claude_code_version"),
            },
        )

    def _stream_event(self, message: StreamEvent) -> None:
        event = message.event
        stream = message.parent_tool_use_id
        self.outcome.streamed.event(event, stream)
        delta = event.get("delta")
        if (
            stream is None
            and event.get("type") == "content_block_delta"
            and isinstance(delta, dict)
            and delta.get("type") == "text_delta"
        ):
            self.recorder.text_delta(str(delta.get("text", "")))

    def _result(self, message: ResultMessage) -> RunResult:
        self.outcome.session_id = message.session_id or self.outcome.session_id
        return RunResult(
            subtype=message.subtype,
            is_error=message.is_error,
            num_turns=message.num_turns,
            session_id=message.session_id,
            result=message.result,
            total_cost_usd=message.total_cost_usd,
            usage=message.usage,
            model_usage=message.model_usage,
            api_error_status=message.api_error_status,
            terminal_reason=message.terminal_reason,
            errors=list(message.errors or []),
            duration_api_ms=message.duration_api_ms,
            permission_denials=len(message.permission_denials or []),
        )

    # --- stopping --------------------------------------------------------------------------

    async def _halt(self, client: ClaudeSDKClient | None) -> None:
        """Interrupt the turn and read on to its result; kill the group if that overruns."""
        pid = self.processes.pid_of(self.spec.run_id)
        reason = self.outcome.stopped
        self._emit("claude_code.stopping", {"reason": reason, "pid": pid})
        if client is not None:
            try:
                async with asyncio.timeout(self.spec.stop_grace_s):
                    await client.interrupt()
                    self.outcome.result = await self._read(client)
                return
            except Exception as exc:  # the grace ran out, or the CLI was already gone
                log.info("claude_code_interrupt_failed", error=repr(exc), reason=reason)
        self._kill("stop_grace_elapsed")

    def _kill(self, why: str) -> None:
        killed = self.processes.end(self.spec.run_id)
        if killed:
            self.outcome.killed += killed
            self._emit("claude_code.killed", {"pids": killed, "reason": why})

    async def _close(self, client: ClaudeSDKClient | None) -> None:
        """Disconnect (bounded), then end whatever is left of the run's process group."""
        if client is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.spec.stop_grace_s + DISCONNECT_S):
                    await client.disconnect()
        self._kill("left_running")

    # --- SDK options and callbacks ---------------------------------------------------------

    def _options(self, resume: str | None) -> ClaudeAgentOptions:
        spec = self.spec
        forward: list[HookMatcher] = [HookMatcher(hooks=[self._hook])]
        hooks: dict[HookEvent, list[HookMatcher]] = {name: forward for name in FORWARDED_HOOKS}
        hooks["PreToolUse"] = [HookMatcher(hooks=[self._pre_tool_use])]
        return ClaudeAgentOptions(
            cwd=str(spec.cwd),
            model=spec.model,
            tools=list(spec.tools),
            disallowed_tools=list(spec.disallowed_tools),
            permission_mode=spec.permission_mode,
            max_turns=spec.max_turns,
            max_budget_usd=spec.max_budget_usd,
            system_prompt={"type": "preset", "preset": "claude_code", "append": spec.system_append},
            resume=resume,
            # never load settings (and the hooks they may define) from the workspace or home
            setting_sources=[],
            include_partial_messages=True,
            hooks=hooks,
            can_use_tool=self._can_use_tool,
            env=spec.env,
            cli_path=spec.launcher,
            stderr=self._stderr_line,
        )

    async def _pre_tool_use(
        self, hook_input: HookInput, tool_use_id: str | None, context: HookContext
    ) -> HookJSONOutput:
        """The permission layer on every tool use (whatever the permission mode)."""
        data: dict[str, Any] = dict(hook_input)
        self.recorder.hook(data)
        tool_input = data.get("tool_input")
        decision = self.recorder.check(
            tool_use_id,
            str(data.get("tool_name", "")),
            tool_input if isinstance(tool_input, dict) else {},
            by="hook",
        )
        if decision.allowed:
            return {}
        return {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "deny",
                "permissionDecisionReason": decision.reason,
            }
        }

    async def _hook(
        self, hook_input: HookInput, tool_use_id: str | None, context: HookContext
    ) -> HookJSONOutput:
        self.recorder.hook(dict(hook_input))
        return {}

    async def _can_use_tool(
        self, tool: str, tool_input: dict[str, Any], context: ToolPermissionContext
    ) -> PermissionResult:
        """Claude Code asks (its permission mode would prompt a user): the policy answers."""
        decision = self.recorder.check(context.tool_use_id, tool, tool_input, by="can_use_tool")
        if decision.allowed:
            return PermissionResultAllow()
        return PermissionResultDeny(message=decision.reason)

    def _stderr_line(self, line: str) -> None:
        for secret in self.spec.secrets:
            if secret:
                line = line.replace(secret, "<redacted>")
        self._stderr.append(line)

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr)[-1500:]
