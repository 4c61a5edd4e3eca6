"""The provider interface: one common shape for every vendor's chat/tool-calling API.

An agent loop speaks only these types. Each provider module translates them to and from its
wire protocol and translates its errors into `app.providers.errors` once, at the boundary.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "other"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: Mapping[str, Any]
    raw_arguments: str = ""
    arguments_error: str | None = None  # set when the model sent arguments that are not JSON
    extra: Mapping[str, Any] = field(default_factory=dict)  # vendor bits to echo back


@dataclass(frozen=True, slots=True)
class InlineImage:
    """Raw image bytes sent inline with a tool result (the wire encodes them)."""

    mime_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None  # role="tool": which call this answers
    tool_name: str | None = None  # role="tool": the called function (Gemini needs it)
    is_error: bool = False  # role="tool": the tool failed
    # role="tool", where the wire has room for them (Gemini; other wires send `content`):
    result: Mapping[str, Any] | None = None  # the result as a JSON object instead of text
    images: tuple[InlineImage, ...] = ()  # images returned with the result (screenshots)


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ComputerUse:
    """The vendor's predefined computer-use tool (Gemini's `computerUse`): the model answers
    with UI actions (`click_at`, `navigate`, ...) as ordinary tool calls."""

    environment: Literal["browser"] = "browser"
    excluded_actions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    model: str
    messages: Sequence[Message]
    tools: Sequence[ToolSpec] = ()
    computer_use: ComputerUse | None = None  # Gemini only; the `browser` kind requires it
    tool_choice: Literal["auto", "none", "required"] | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    tool_calls: tuple[ToolCall, ...]
    finish_reason: FinishReason
    usage: Usage
    model: str
    request_id: str | None = None
    raw_finish_reason: str | None = None


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class StreamDone:
    completion: Completion


StreamEvent = TextDelta | StreamDone


class Provider(Protocol):
    """One vendor endpoint. `timeout_s` bounds the whole call (None: transport timeouts only)."""

    name: str

    async def complete(
        self, request: CompletionRequest, *, timeout_s: float | None
    ) -> Completion: ...

    def stream(
        self, request: CompletionRequest, *, timeout_s: float | None
    ) -> AsyncIterator[StreamEvent]: ...

    async def aclose(self) -> None: ...
