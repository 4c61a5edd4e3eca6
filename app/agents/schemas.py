"""Agent and task shapes: what clients send, what the API returns, the domain states."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from app.core.config import ProviderName
from app.tools.browser.guard import OriginError, parse_origin

AGENT_NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$"
AGENT_NAME_RULE = (
    "lowercase letters, digits, '-' and '_', 1–64 characters, "  # noqa: RUF001
    "starting and ending with a letter or digit"
)
MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$"

AgentKind = Literal["chat", "coder", "orchestrator", "browser"]
BROWSER_FIELDS = ("allowed_origins", "start_url", "screen")
MAX_ALLOWED_ORIGINS = 100


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


def _check_agent_name(value: str) -> str:
    if not re.fullmatch(AGENT_NAME_PATTERN, value):
        raise PydanticCustomError("agent_name", f"an agent name has {AGENT_NAME_RULE}")
    return value


AgentNameStr = Annotated[
    str,
    AfterValidator(_check_agent_name),
    Field(description=AGENT_NAME_RULE, json_schema_extra={"pattern": AGENT_NAME_PATTERN}),
]


class ModelRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: ProviderName
    model: str = Field(pattern=MODEL_PATTERN)


class Screen(BaseModel):
    """A browser agent's viewport, in CSS pixels (screenshots are exactly this size)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    width: int = Field(1440, ge=320, le=3840)
    height: int = Field(900, ge=240, le=2160)


def _origins(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    try:
        return sorted({str(parse_origin(origin)) for origin in value})
    except OriginError as exc:
        raise ValueError(str(exc)) from None


class BrowserOptions(BaseModel):
    """The `browser` kind's options, stored in `agents.options`: the origins its page may
    reach (empty: none), where it starts, and its screen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed_origins: list[str] = Field(default_factory=list, max_length=MAX_ALLOWED_ORIGINS)
    start_url: str | None = None
    screen: Screen = Field(default_factory=Screen)

    @field_validator("allowed_origins")
    @classmethod
    def _normal(cls, value: list[str] | None) -> list[str] | None:
        return _origins(value)


class AgentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: AgentNameStr
    kind: AgentKind = "chat"
    provider: ProviderName | None = Field(None, description="default: BIGTHREE_DEFAULT_PROVIDER")
    model: str = Field(pattern=MODEL_PATTERN, description="the provider's model name")
    instructions: str = Field("", max_length=20_000)
    fallbacks: list[ModelRef] = Field(
        default_factory=list, max_length=5, description="tried in order when the primary fails"
    )
    stream: bool = Field(False, description="stream completions; text arrives as llm.delta events")
    workspace: str | None = Field(
        None,
        max_length=4096,
        description="coder only: an absolute directory inside one of BIGTHREE_WORKSPACE_ROOTS "
        "(default: <data_dir>/workspaces/<name>)",
    )
    allowed_origins: list[str] | None = Field(
        None,
        max_length=MAX_ALLOWED_ORIGINS,
        description="browser only: origins (scheme://host[:port]) its page may reach "
        "(default: BIGTHREE_BROWSER_ALLOWED_ORIGINS; empty: every navigation is refused)",
    )
    start_url: str | None = Field(
        None, max_length=8192, description="browser only: the page it opens first (allowed)"
    )
    screen: Screen | None = Field(
        None, description='browser only: the viewport (default {"width": 1440, "height": 900})'
    )

    @field_validator("allowed_origins")
    @classmethod
    def _normal(cls, value: list[str] | None) -> list[str] | None:
        return _origins(value)

    @model_validator(mode="after")
    def _kind_fields(self) -> AgentCreate:
        if self.workspace is not None and self.kind != "coder":
            raise ValueError("only coder agents have a workspace")
        given = [f for f in BROWSER_FIELDS if getattr(self, f) is not None]
        if given and self.kind != "browser":
            raise ValueError(f"only browser agents have {', '.join(given)}")
        return self


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def _from_iso(value: object) -> object:
    """Read back what `_iso` wrote (the client validates the server's JSON with these models)."""
    return datetime.fromisoformat(value).timestamp() if isinstance(value, str) else value


class UsageOut(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    total_tokens: int = 0


class Agent(BaseModel):
    id: str
    name: str
    kind: str
    provider: str
    model: str
    instructions: str
    fallbacks: list[ModelRef]
    stream: bool = False
    workspace: str | None = None
    allowed_origins: list[str] | None = None  # browser only
    start_url: str | None = None  # browser only
    screen: Screen | None = None  # browser only
    state: AgentState
    created_at: float
    updated_at: float
    usage: UsageOut
    cost_usd: float
    tasks_total: int
    queued_tasks: int = 0
    running_task_id: str | None = None

    @field_serializer("created_at", "updated_at")
    def _times(self, ts: float) -> str | None:
        return _iso(ts)

    _read_times = field_validator("created_at", "updated_at", mode="before")(_from_iso)

    def browser_options(self) -> BrowserOptions:
        return BrowserOptions(
            allowed_origins=self.allowed_origins or [],
            start_url=self.start_url,
            screen=self.screen or Screen(),
        )


class TaskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1)
    timeout_s: float | None = Field(None, gt=0, description="deadline for the whole task")


class TaskError(BaseModel):
    type: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class Task(BaseModel):
    id: str
    agent: str
    agent_id: str
    state: TaskState
    prompt: str
    result: str | None = None
    error: TaskError | None = None
    usage: UsageOut
    cost_usd: float
    attempts: int
    timeout_s: float
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    queue_wait_s: float | None = None
    run_s: float | None = None
    files_changed: list[str] = Field(default_factory=list)

    @field_serializer("created_at", "started_at", "finished_at")
    def _times(self, ts: float | None) -> str | None:
        return _iso(ts)

    _read_times = field_validator("created_at", "started_at", "finished_at", mode="before")(
        _from_iso
    )


class AgentCost(BaseModel):
    agent: str
    provider: str
    model: str
    cost_usd: float
    usage: UsageOut


class ModelCost(BaseModel):
    provider: str
    model: str
    calls: int
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cost_usd: float


class CostReport(BaseModel):
    """Spend so far: per live agent, per provider/model (all time, deleted agents included)."""

    total_cost_usd: float
    total_input_tokens: int
    total_output_tokens: int
    by_agent: list[AgentCost]
    by_model: list[ModelCost]


class AgentList(BaseModel):
    agents: list[Agent]


class TaskList(BaseModel):
    tasks: list[Task]
