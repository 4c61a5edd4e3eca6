"""What a Claude Code run reports, turned into the service's events — no SDK types here.

Events of one run, in order (the model's tool uses as the `coder` kind reports them, with
Claude Code's tool names):

    UserPromptSubmit                     hook events, source `claude_code`, the shape
    claude_code.session                    POST /v1/events accepts from external hooks
    llm.delta ...                        assistant text, when the agent streams
    tool.call → PreToolUse [→ permission.denied] → PostToolUse → tool.result   per tool use
    Stop, claude_code.result             the run's summary (turns, cost, usage, errors)

A tool use is seen twice — in the assistant message and in the PreToolUse hook, which may
run first (the SDK reads messages and serves hooks in different tasks) — so `tool.call` is
emitted by whichever comes first, once per call id, and always precedes its hook events.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.agents.kinds.claude_code.policy import WRITE_TOOLS, Decision, ToolPolicy
from app.agents.kinds.toolloop import PREVIEW_CHARS, preview
from app.events.schemas import EventIn

HOOK_SOURCE = "claude_code"
DELTA_INTERVAL_S = 0.1
DELTA_MAX_CHARS = 2000

Emit = Callable[[str, dict[str, Any]], None]


def bounded(value: Any, limit: int = PREVIEW_CHARS) -> Any:
    """`value` with every long string cut (hook inputs carry whole files)."""
    if isinstance(value, str):
        return preview(value, limit)
    if isinstance(value, Mapping):
        return {str(k): bounded(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [bounded(v, limit) for v in value]
    return value


def result_text(content: Any) -> str:
    """A tool result's content (a string, text blocks, or nothing) as text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [str(b.get("text", "")) for b in content if isinstance(b, Mapping)]
        if any(parts):
            return "".join(parts)
    return json.dumps(content, default=str)


@dataclass(slots=True)
class _Call:
    tool: str
    step: int
    started: float
    subagent: str | None


@dataclass(slots=True)
class RunRecorder:
    """Emits one run's events; keeps what the outcome needs (steps, files, denials)."""

    agent: str
    task_id: str
    policy: ToolPolicy
    emit: Emit  # a task event (`source: agent`)
    emit_hook: Callable[[EventIn], None]  # an event in POST /v1/events' shape
    emit_delta: Emit | None = None  # `llm.delta`, when the agent streams
    files_changed: list[str] = field(default_factory=list)
    steps: int = 0
    denied: int = 0
    _calls: dict[str, _Call] = field(default_factory=dict)
    _messages: set[str] = field(default_factory=set)
    _pending_text: list[str] = field(default_factory=list)
    _last_flush: float = 0.0

    # --- the message stream --------------------------------------------------------------

    def assistant_message(self, message_id: str | None, subagent: str | None) -> None:
        """A new model answer (a turn) of the main conversation."""
        if subagent is None and message_id and message_id not in self._messages:
            self._messages.add(message_id)
            self.steps += 1

    def tool_use(
        self, call_id: str, tool: str, tool_input: Mapping[str, Any], subagent: str | None
    ) -> None:
        """A tool use in an assistant message; a tool outside the agent's set never reaches
        the hook (Claude Code answers "no such tool"), so its refusal is reported here."""
        if self._call(call_id, tool, tool_input, subagent) and tool not in self.policy.tools:
            self.denial(call_id, tool, self.policy.decide(tool, tool_input), by="tool_set")

    def tool_result(self, call_id: str, is_error: bool, content: Any) -> None:
        call = self._calls.pop(call_id, None)
        if call is None:
            return
        self.emit(
            "tool.result",
            {
                "tool": call.tool,
                "call_id": call_id,
                "step": call.step,
                "is_error": is_error,
                "content": preview(result_text(content)),
                "duration_s": round(time.perf_counter() - call.started, 4),
                **({"subagent": call.subagent} if call.subagent else {}),
            },
        )

    def text_delta(self, text: str) -> None:
        if self.emit_delta is None or not text:
            return
        self._pending_text.append(text)
        now = time.perf_counter()
        size = sum(len(p) for p in self._pending_text)
        if size >= DELTA_MAX_CHARS or now - self._last_flush >= DELTA_INTERVAL_S:
            self.flush_text()

    def flush_text(self) -> None:
        if self.emit_delta is not None and self._pending_text:
            self.emit_delta("llm.delta", {"text": "".join(self._pending_text), "step": self.steps})
            self._pending_text.clear()
        self._last_flush = time.perf_counter()

    # --- the permission layer and hooks --------------------------------------------------

    def check(
        self, call_id: str | None, tool: str, tool_input: Mapping[str, Any], *, by: str
    ) -> Decision:
        """The policy's decision on a tool use, reported when it refuses."""
        decision = self.policy.decide(tool, tool_input)
        if not decision.allowed:
            self.denial(call_id, tool, decision, by=by)
        return decision

    def denial(self, call_id: str | None, tool: str, decision: Decision, *, by: str) -> None:
        self.denied += 1
        self.emit(
            "permission.denied",
            {
                "tool": tool,
                "call_id": call_id,
                "rule": decision.rule,
                "reason": decision.reason,
                "by": by,
            },
        )

    def hook(self, hook_input: Mapping[str, Any]) -> None:
        """A Claude Code hook callback, published as POST /v1/events would publish it."""
        name = str(hook_input.get("hook_event_name") or "hook")
        call_id = hook_input.get("tool_use_id")
        tool = hook_input.get("tool_name")
        if name == "PreToolUse" and isinstance(call_id, str) and isinstance(tool, str):
            tool_input = hook_input.get("tool_input")
            agent_id = hook_input.get("agent_id")
            self._call(
                call_id,
                tool,
                tool_input if isinstance(tool_input, Mapping) else {},
                agent_id if isinstance(agent_id, str) else None,
            )
        if name == "PostToolUse" and tool in WRITE_TOOLS:
            self._changed(hook_input.get("tool_input"))
        session_id = hook_input.get("session_id")
        self.emit_hook(
            EventIn(
                source_app=HOOK_SOURCE,
                hook_event_type=name,
                session_id=session_id if isinstance(session_id, str) else None,
                agent=self.agent,
                task_id=self.task_id,
                payload=bounded(dict(hook_input)),
                timestamp=int(time.time() * 1000),
            )
        )

    # --- helpers -------------------------------------------------------------------------

    def _call(
        self, call_id: str, tool: str, tool_input: Mapping[str, Any], subagent: str | None
    ) -> bool:
        """Emit `tool.call` unless this call id was already seen; True when it was new."""
        if call_id in self._calls:
            return False
        self._calls[call_id] = _Call(tool, self.steps, time.perf_counter(), subagent)
        arguments = json.dumps(dict(tool_input), default=str)
        self.emit(
            "tool.call",
            {
                "tool": tool,
                "call_id": call_id,
                "step": self.steps,
                "arguments": preview(arguments),
                **({"subagent": subagent} if subagent else {}),
            },
        )
        return True

    def _changed(self, tool_input: Any) -> None:
        if not isinstance(tool_input, Mapping):
            return
        path = tool_input.get("file_path") or tool_input.get("notebook_path")
        relative = self.policy.relative(path) if isinstance(path, str) else None
        if relative is not None and relative not in self.files_changed:
            self.files_changed.append(relative)
