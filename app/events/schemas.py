"""Event shapes: the stored/streamed record and what clients may post."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.core import jsonsafe as payload_rules
from app.core.jsonsafe import JsonInt

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"


MAX_SEQ = 2**63 - 1  # seqs are signed 64-bit integers in the store


class Event(BaseModel):
    """One step of something, in order: `seq` rises by one for every event the service stores."""

    model_config = ConfigDict(frozen=True)

    seq: int
    ts: float = Field(description="UNIX time in seconds")
    source: str
    type: str
    agent: str | None = None
    task_id: str | None = None
    session_id: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.ts, UTC)


class EventIn(BaseModel):
    """An external event. Also accepts the shape Claude Code hook scripts send
    (`source_app`, `session_id`, `hook_event_type`, `payload`, `timestamp` in ms)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        # the rule of `_needs_type`, stated in the OpenAPI document
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"type": "string"}}}
                for name in ("type", "hook_event_type")
            ]
        },
    )

    type: str | None = Field(None, min_length=1, max_length=64, pattern=NAME_PATTERN)
    source: str | None = Field(None, min_length=1, max_length=64, pattern=NAME_PATTERN)
    agent: str | None = Field(None, min_length=1, max_length=64)
    task_id: str | None = Field(None, min_length=1, max_length=32)
    session_id: str | None = Field(None, min_length=1, max_length=128)
    payload: dict[str, Any] = Field(
        default_factory=dict,
        description="any JSON object: valid Unicode (no lone surrogates), finite numbers, "
        f"at most {payload_rules.MAX_DEPTH} levels deep; "
        "stored truncated when over BIGTHREE_EVENT_PAYLOAD_MAX_BYTES",
    )
    # Claude Code hook shape
    source_app: str | None = Field(None, min_length=1, max_length=64, pattern=NAME_PATTERN)
    hook_event_type: str | None = Field(None, min_length=1, max_length=64, pattern=NAME_PATTERN)
    timestamp: JsonInt | None = Field(
        None, ge=0, le=2**53 - 1, description="milliseconds since the epoch"
    )

    _timestamp_is_a_number = field_validator("timestamp", mode="before")(payload_rules.number_only)
    chat: list[Any] | None = None
    summary: str | None = Field(None, max_length=10_000)

    @field_validator("agent", "task_id", "session_id", "summary")
    @classmethod
    def _valid_text(cls, value: str | None) -> str | None:
        if value is not None:
            payload_rules.check(value)
        return value

    @field_validator("payload")
    @classmethod
    def _valid_payload(cls, value: dict[str, Any]) -> dict[str, Any]:
        payload_rules.check(value)
        return value

    @field_validator("chat")
    @classmethod
    def _valid_chat(cls, value: list[Any] | None) -> list[Any] | None:
        if value is not None:
            payload_rules.check(value, ["chat"], depth=1)  # it is stored inside the payload
        return value

    @model_validator(mode="after")
    def _needs_type(self) -> EventIn:
        if not (self.type or self.hook_event_type):
            raise ValueError("an event needs `type` (or `hook_event_type`)")
        return self

    @property
    def event_type(self) -> str:
        return self.type or self.hook_event_type or "external"

    @property
    def event_source(self) -> str:
        return self.source or self.source_app or "external"

    def event_payload(self) -> dict[str, Any]:
        payload = dict(self.payload)
        if self.timestamp is not None:
            payload.setdefault("client_timestamp_ms", self.timestamp)
        if self.summary is not None:
            payload.setdefault("summary", self.summary)
        if self.chat is not None:
            payload.setdefault("chat", self.chat)
        return payload


class EventPage(BaseModel):
    events: list[Event]
    next_after_seq: int = Field(description="pass as after_seq to read on")
    last_seq: int = Field(description="newest seq the service has assigned")


class Filterable(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def agent(self) -> str | None: ...
    @property
    def task_id(self) -> str | None: ...


class EventFilter(BaseModel):
    model_config = ConfigDict(frozen=True)

    agent: str | None = None
    type: str | None = None
    task_id: str | None = None

    def matches(self, event: Filterable) -> bool:
        if self.agent is not None and event.agent != self.agent:
            return False
        if self.task_id is not None and event.task_id != self.task_id:
            return False
        if self.type is None:
            return True
        if self.type.endswith("*"):
            return event.type.startswith(self.type[:-1])
        return event.type == self.type


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """A stored event as the service passes it around: its fields for filters and
    listeners, and `frame`, its JSON text, encoded once and sent as is to every subscriber
    and client."""

    seq: int
    ts: float
    source: str
    type: str
    agent: str | None
    task_id: str | None
    session_id: str | None
    payload: dict[str, Any]
    frame: str


def event_frame(
    seq: int,
    ts: float,
    source: str,
    type_: str,
    agent: str | None,
    task_id: str | None,
    session_id: str | None,
    payload_json: str,
) -> str:
    """The event's JSON text (the `Event` schema), around an already encoded payload."""
    return orjson.dumps(
        {
            "seq": seq,
            "ts": ts,
            "source": source,
            "type": type_,
            "agent": agent,
            "task_id": task_id,
            "session_id": session_id,
            "payload": orjson.Fragment(payload_json),
        }
    ).decode()
