"""Agent and task shapes: what clients send, what the API returns (the domain states and kinds
live in `app.agents.states`, re-exported here)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PrivateAttr,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from app.agents.states import AgentKind as AgentKind
from app.agents.states import AgentState as AgentState
from app.agents.states import PermissionMode as PermissionMode
from app.agents.states import TaskState as TaskState
from app.core.jsonsafe import JsonInt, ValidText, number_only
from app.core.names import MODEL_PATTERN, ProviderName
from app.core.redaction import redact, redact_value
from app.tools.browser.guard import OriginError, parse_origin

AGENT_NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$"
AGENT_NAME_RULE = (
    "lowercase letters, digits, '-' and '_', 1–64 characters, "  # noqa: RUF001
    "starting and ending with a letter or digit"
)

TOOL_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,127}$"

WORKSPACE_KINDS = frozenset({"coder", "claude_code"})  # kinds that work in a workspace
ToolName = Annotated[str, Field(pattern=TOOL_NAME_PATTERN)]
BROWSER_FIELDS = ("allowed_origins", "start_url", "screen")
MAX_ALLOWED_ORIGINS = 100


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
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    provider: ProviderName
    model: str = Field(pattern=MODEL_PATTERN)


class ClaudeCodeOptions(BaseModel):
    """What a claude_code agent may do; stored as its `options` (None: the service default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed_tools: list[ToolName] | None = None
    disallowed_tools: list[ToolName] = Field(default_factory=list)
    permission_mode: PermissionMode = "default"
    max_turns: JsonInt | None = Field(None, ge=1, le=1000)


_NO_CLAUDE_CODE_FIELDS: dict[str, JsonValue] = {
    name: {"type": "null"}
    for name in ("allowed_tools", "disallowed_tools", "permission_mode", "max_turns")
}
_NO_BROWSER_FIELDS: dict[str, JsonValue] = {name: {"type": "null"} for name in BROWSER_FIELDS}
_NEITHER: dict[str, JsonValue] = {**_NO_CLAUDE_CODE_FIELDS, **_NO_BROWSER_FIELDS}
_KIND_RULES: list[JsonValue] = [
    {  # chat (the default) and orchestrator: no workspace, no other kind's fields
        "properties": {
            "kind": {"enum": ["chat", "orchestrator"]},
            "workspace": {"type": "null"},
            **_NEITHER,
        }
    },
    {  # coder: a workspace, no other kind's fields
        "properties": {"kind": {"const": "coder"}, **_NEITHER},
        "required": ["kind"],
    },
    {  # claude_code: through Anthropic, one model (no fallbacks)
        "properties": {
            "kind": {"const": "claude_code"},
            "provider": {"const": "anthropic"},
            "fallbacks": {"maxItems": 0},
            **_NO_BROWSER_FIELDS,
        },
        "required": ["kind", "provider"],
    },
    {  # browser: Gemini's computer-use model (fallbacks too); origins are
        # scheme://host[:port] (its start_url must lie in one of them)
        "properties": {
            "kind": {"const": "browser"},
            "provider": {"const": "gemini"},
            "fallbacks": {"items": {"properties": {"provider": {"const": "gemini"}}}},
            "workspace": {"type": "null"},
            "allowed_origins": {
                "anyOf": [
                    {
                        "type": "array",
                        "items": {
                            "pattern": r"^https?://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:[1-9][0-9]{0,3})?/?$"
                        },
                    },
                    {"type": "null"},
                ]
            },
            **_NO_CLAUDE_CODE_FIELDS,
        },
        "required": ["kind", "provider"],
    },
]


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
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        # the rules of `_kind_specific_fields`, stated in the OpenAPI document: one branch per
        # kind (no `not`/`allOf`, which test generators can only meet by filtering)
        json_schema_extra={"anyOf": _KIND_RULES},
    )

    name: AgentNameStr
    kind: AgentKind = "chat"
    provider: ProviderName | None = Field(None, description="default: BIGTHREE_DEFAULT_PROVIDER")
    model: str = Field(pattern=MODEL_PATTERN, description="the provider's model name")
    instructions: ValidText = Field("", max_length=20_000)
    fallbacks: list[ModelRef] = Field(
        default_factory=list, max_length=5, description="tried in order when the primary fails"
    )
    stream: bool = Field(False, description="stream completions; text arrives as llm.delta events")
    workspace: ValidText | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="coder and claude_code: an absolute directory inside one of "
        "BIGTHREE_WORKSPACE_ROOTS (default: <data_dir>/workspaces/<name>)",
    )
    # claude_code only (stored together as the agent's `options`)
    allowed_tools: list[ToolName] | None = Field(
        None,
        max_length=64,
        description="claude_code: the Claude Code tools it may use (default: the file tools, "
        "plus Bash when BIGTHREE_CLAUDE_CODE_ALLOW_BASH is set)",
    )
    disallowed_tools: list[ToolName] | None = Field(
        None, max_length=64, description="claude_code: tools it may never use"
    )
    permission_mode: PermissionMode | None = Field(
        None, description="claude_code: Claude Code's permission mode (default: default)"
    )
    max_turns: JsonInt | None = Field(
        None, ge=1, le=1000, description="claude_code: default BIGTHREE_TOOL_LOOP_MAX_STEPS"
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

    _max_turns_is_a_number = field_validator("max_turns", mode="before")(number_only)

    @model_validator(mode="after")
    def _kind_specific_fields(self) -> AgentCreate:
        if self.workspace is not None and self.kind not in WORKSPACE_KINDS:
            raise ValueError("only coder and claude_code agents have a workspace")
        claude_code_only = (
            self.allowed_tools,
            self.disallowed_tools,
            self.permission_mode,
            self.max_turns,
        )
        if self.kind != "claude_code" and any(v is not None for v in claude_code_only):
            raise ValueError(
                "allowed_tools, disallowed_tools, permission_mode and max_turns are for "
                "claude_code agents only"
            )
        given = [f for f in BROWSER_FIELDS if getattr(self, f) is not None]
        if given and self.kind != "browser":
            raise ValueError(f"only browser agents have {', '.join(given)}")
        return self

    def claude_code_options(self) -> ClaudeCodeOptions:
        return ClaudeCodeOptions(
            allowed_tools=self.allowed_tools,
            disallowed_tools=self.disallowed_tools or [],
            permission_mode=self.permission_mode or "default",
            max_turns=self.max_turns,
        )


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
    # claude_code agents only (None for other kinds)
    allowed_tools: list[str] | None = None
    disallowed_tools: list[str] | None = None
    permission_mode: PermissionMode | None = None
    max_turns: int | None = None
    session_id: str | None = Field(None, description="claude_code: the Claude Code session")
    # browser agents only (None for other kinds)
    allowed_origins: list[str] | None = None
    start_url: str | None = None
    screen: Screen | None = None
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

    def claude_code_options(self) -> ClaudeCodeOptions:
        return ClaudeCodeOptions(
            allowed_tools=self.allowed_tools,
            disallowed_tools=self.disallowed_tools or [],
            permission_mode=self.permission_mode or "default",
            max_turns=self.max_turns,
        )

    def browser_options(self) -> BrowserOptions:
        return BrowserOptions(
            allowed_origins=self.allowed_origins or [],
            start_url=self.start_url,
            screen=self.screen or Screen(),
        )


# a deadline shorter than this cannot hold a provider call; the upper bound is the
# deployment's BIGTHREE_MAX_TASK_TIMEOUT_S (stated in the OpenAPI document)
MIN_TASK_TIMEOUT_S = 0.1


class TaskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: ValidText = Field(min_length=1, description="at most BIGTHREE_MAX_PROMPT_CHARS")
    timeout_s: float | None = Field(
        None,
        ge=MIN_TASK_TIMEOUT_S,
        description="deadline for the whole task, in seconds (default "
        "BIGTHREE_DEFAULT_TASK_TIMEOUT_S, at most BIGTHREE_MAX_TASK_TIMEOUT_S)",
    )
    new_session: bool = Field(
        False, description="claude_code: start a new Claude Code session instead of continuing"
    )


class TaskError(BaseModel):
    """Why a task did not succeed. Text from outside (a provider's error message may echo
    the key it was sent) is redacted on the way in, so neither the stored row, the task's
    events nor the API ever carry a secret."""

    type: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)

    @field_validator("message")
    @classmethod
    def _redact_message(cls, value: str) -> str:
        return redact(value)

    @field_validator("details")
    @classmethod
    def _redact_details(cls, value: dict[str, Any]) -> dict[str, Any]:
        redacted: dict[str, Any] = redact_value(value)
        return redacted


class Task(BaseModel):
    """A task as stored. Immutable: every change makes a new Task (`model_copy`), so its
    JSON is encoded at most once (`json`), however often it is read."""

    model_config = ConfigDict(frozen=True)

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
    new_session: bool = False

    @field_serializer("created_at", "started_at", "finished_at")
    def _times(self, ts: float | None) -> str | None:
        return _iso(ts)

    _read_times = field_validator("created_at", "started_at", "finished_at", mode="before")(
        _from_iso
    )
    _encoded: str | None = PrivateAttr(default=None)

    def json_text(self) -> str:
        """`model_dump_json()`, kept after the first call (polled tasks are read often).

        The private value is read from `__pydantic_private__` itself: `self._encoded` goes
        through pydantic's `__getattr__`, which first asks the attribute's descriptor for
        a `__get__` it lacks, and the AttributeError that raises made a read 5 µs, as
        much as a poll's whole response (bench/README.md, run 16)."""
        private = self.__pydantic_private__
        assert private is not None  # the model declares a private attribute
        encoded: str | None = private["_encoded"]
        if encoded is None:
            encoded = private["_encoded"] = self.model_dump_json()
        return encoded

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Task:
        """A changed copy: pydantic copies private attributes too, so the copy forgets the
        JSON of the task it was made from."""
        copied = super().model_copy(update=update, deep=deep)
        private = copied.__pydantic_private__
        assert private is not None
        private["_encoded"] = None
        return copied


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
