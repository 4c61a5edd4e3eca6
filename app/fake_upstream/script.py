"""The script: what a test tells the fake to answer, as `Step`s queued per model.

A `ScriptBook` holds one FIFO queue per model name plus the default queue `"*"`, used when
the model's own queue is empty. A step with `repeat=n` is served n times before it leaves
the queue; `repeat=-1` serves it forever (later steps of that queue are never reached).
All operations are synchronous and run on the event loop thread, so they are atomic with
respect to concurrent requests.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_QUEUE = "*"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToolCallSpec(_Spec):
    """One tool call; `arguments` as a string is sent verbatim (it may be invalid JSON)."""

    id: str | None = None
    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)


class UsageSpec(_Spec):
    """Token counts; `input_tokens` is the total input, cached tokens included."""

    input_tokens: int | None = Field(default=None, ge=0)
    output_tokens: int | None = Field(default=None, ge=0)
    cached_input_tokens: int = Field(default=0, ge=0)


class ErrorSpec(_Spec):
    """An error body; unset fields get the protocol's usual values for the status."""

    type: str | None = None
    message: str | None = None
    code: str | None = None


class StreamErrorSpec(_Spec):
    """An error event sent inside a 200 stream, after the first chunk."""

    type: str | None = None
    message: str | None = None


class Step(_Spec):
    """One scripted upstream answer. Every field is optional; an empty step is the default."""

    status: int = Field(default=200, ge=100, le=599)
    headers: dict[str, str] = Field(default_factory=dict)
    text: str | None = None
    tool_calls: list[ToolCallSpec] = Field(default_factory=list)
    usage: UsageSpec | None = None
    finish_reason: str | None = None
    latency_s: float = Field(default=0.0, ge=0)
    drip_s: float = Field(default=0.0, ge=0)
    error: ErrorSpec | None = None
    retry_delay_s: float | None = Field(default=None, ge=0)
    malformed: bool = False
    reset_mid_body: bool = False
    stream_error: StreamErrorSpec | None = None
    repeat: int = 1

    @field_validator("repeat")
    @classmethod
    def _repeat_is_positive_or_forever(cls, value: int) -> int:
        if value == 0 or value < -1:
            raise ValueError("repeat must be >= 1, or -1 for forever")
        return value

    @property
    def is_error(self) -> bool:
        """True when the step answers with an HTTP error instead of a completion."""
        return self.status >= 400 or self.error is not None

    @property
    def error_status(self) -> int:
        """The HTTP status of an error answer: `status` if it is an error, else 500."""
        return self.status if self.status >= 400 else 500


class ScriptRequest(BaseModel):
    """Body of `POST /_fake/script`."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    steps: list[Step] = Field(min_length=1)


@dataclass
class _Entry:
    step: Step
    remaining: int  # -1 = forever


class ScriptBook:
    """Per-model FIFO queues of steps, with `"*"` as the fallback queue."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[_Entry]] = {}

    def push(self, model: str, steps: list[Step]) -> int:
        """Append `steps` to `model`'s queue; return how many entries it now holds."""
        queue = self._queues.setdefault(model, deque())
        queue.extend(_Entry(step, step.repeat) for step in steps)
        return len(queue)

    def take(self, model: str) -> Step | None:
        """The next step for `model` (its own queue first, then `"*"`), or None."""
        for name in (model, DEFAULT_QUEUE):
            queue = self._queues.get(name)
            if queue:
                return self._serve_head(queue)
        return None

    def pending(self) -> dict[str, int]:
        """Entries left per queue (a repeating entry counts once)."""
        return {name: len(queue) for name, queue in self._queues.items() if queue}

    def clear(self) -> None:
        self._queues.clear()

    @staticmethod
    def _serve_head(queue: deque[_Entry]) -> Step:
        head = queue[0]
        if head.remaining > 0:
            head.remaining -= 1
            if head.remaining == 0:
                queue.popleft()
        return head.step
