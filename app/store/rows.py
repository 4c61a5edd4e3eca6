"""Typed write operations: what the services hand the store writer, one dataclass per change.

Every write the service makes is one of these (no `**values: Any`), so each store backend
(SQLite today; PostgreSQL next) implements the same small set and one contract test suite
holds them all to it. An event's payload arrives already serialized (`payload_json`): it is
encoded once, and the same text is stored and sent to subscribers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append; the store assigns its `seq` inside the transaction."""

    ts: float
    source: str
    type: str
    agent: str | None
    task_id: str | None
    session_id: str | None
    payload: dict[str, Any]
    payload_json: str


@dataclass(frozen=True, slots=True)
class NewAgent:
    id: str
    name: str
    kind: str
    provider: str
    model: str
    instructions: str
    fallbacks: list[dict[str, Any]]
    stream: bool
    workspace: str | None
    options: dict[str, Any] | None  # kind-specific settings (claude_code)
    state: str
    created_at: float

    def as_stored(self) -> dict[str, Any]:
        """The agents row this insert makes (fresh totals, no session yet)."""
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "provider": self.provider,
            "model": self.model,
            "instructions": self.instructions,
            "fallbacks": self.fallbacks,
            "stream": self.stream,
            "workspace": self.workspace,
            "options": self.options,
            "session_id": None,
            "state": self.state,
            "created_at": self.created_at,
            "updated_at": self.created_at,
            "input_tokens": 0,
            "output_tokens": 0,
            "cost_usd": 0.0,
            "tasks_total": 0,
        }


@dataclass(frozen=True, slots=True)
class AgentSessionSaved:
    """A claude_code agent's upstream session id (None: start afresh)."""

    agent_id: str
    session_id: str | None


@dataclass(frozen=True, slots=True)
class AgentDeleted:
    agent_id: str
    at: float


@dataclass(frozen=True, slots=True)
class NewTask:
    """A queued task; also counts it in its agent's `tasks_total`."""

    id: str
    agent_id: str
    agent_name: str
    prompt: str
    timeout_s: float
    created_at: float
    order_key: int
    new_session: bool = False  # claude_code: start a new upstream session


@dataclass(frozen=True, slots=True)
class TaskStarted:
    task_id: str
    started_at: float


@dataclass(frozen=True, slots=True)
class TaskFinished:
    """A task's outcome, and its usage added to its agent's totals (`agent_id` None: the
    task never ran, nothing to add)."""

    task_id: str
    state: str
    finished_at: float
    result: str | None = None
    error: dict[str, Any] | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cost_usd: float = 0.0
    attempts: int = 0
    files_changed: list[str] = field(default_factory=list)
    agent_id: str | None = None
    agent_state: str | None = None


@dataclass(frozen=True, slots=True)
class UsageAdded:
    """Add one provider/model's calls, tokens and cost to its all-time totals."""

    provider: str
    model: str
    calls: int
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cost_usd: float


@dataclass(frozen=True, slots=True)
class EventsPruned:
    """Delete all but the newest `keep_last` events."""

    keep_last: int


@dataclass(frozen=True, slots=True)
class NewArtifact:
    """A file a task produced (a browser screenshot): its metadata, written once the file is
    on disk (app/artifacts/service.py)."""

    id: str
    task_id: str
    agent_name: str
    kind: str
    step: int
    action: str | None
    url: str
    title: str | None
    page_text: str | None
    mime_type: str
    bytes: int
    width: int
    height: int
    sha256: str
    created_at: float

    def as_stored(self) -> dict[str, Any]:
        """The artifacts row this insert makes (not evicted)."""
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"evicted_at": None}


@dataclass(frozen=True, slots=True)
class ArtifactsEvicted:
    """Artifacts whose files were deleted to keep under the caps: their rows stay (events
    name them), marked evicted `at` (an artifact evicted already keeps its first time)."""

    ids: tuple[str, ...]
    at: float


WriteOp = (
    NewEvent
    | NewAgent
    | AgentSessionSaved
    | AgentDeleted
    | NewTask
    | TaskStarted
    | TaskFinished
    | UsageAdded
    | EventsPruned
    | NewArtifact
    | ArtifactsEvicted
)
