"""The words agents and tasks are described in, free of pydantic: kinds, permission modes,
states. The API shapes (`app.agents.schemas`, which re-exports them) are built on them; the
CLI builds its options and help from them without loading those shapes."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

AgentKind = Literal["chat", "coder", "orchestrator", "claude_code", "browser"]
# how Claude Code treats tool permissions; the service's own permission layer applies in all
PermissionMode = Literal["default", "acceptEdits", "plan", "bypassPermissions"]


class AgentState(StrEnum):
    IDLE = "idle"
    BUSY = "busy"
    FAILED = "failed"
    DELETED = "deleted"


class TaskState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    INTERRUPTED = "interrupted"

    @property
    def finished(self) -> bool:
        return self not in {TaskState.QUEUED, TaskState.RUNNING}
