"""From a step and the request's prompt to a protocol-neutral `Reply`.

Defaults when the step leaves them unset: the text is `echo: <last user text>`, or
`done: <tool result>` when the conversation ends with a tool result; usage counts words
(input = words in every message, output = words in the reply text and tool arguments).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from app.fake_upstream.script import Step, ToolCallSpec


@dataclass(frozen=True)
class Prompt:
    """What a dialect extracted from a request body."""

    last_user_text: str
    tool_result: str | None  # set when the last message is a tool result
    input_words: int


@dataclass(frozen=True)
class ReplyToolCall:
    id: str
    name: str
    arguments: str  # the wire JSON string (possibly invalid when scripted raw)
    parsed: dict[str, object] | str  # the object, or the raw string when it is not an object


@dataclass(frozen=True)
class Reply:
    text: str
    tool_calls: tuple[ReplyToolCall, ...]
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    finish_reason: str | None  # a scripted override, else the dialect decides


def count_words(texts: Iterable[str]) -> int:
    return sum(len(text.split()) for text in texts)


def new_id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(12)}"


def pieces(text: str) -> list[str]:
    """Split text into word-sized stream pieces that concatenate back to it exactly."""
    return re.findall(r"\s*\S+\s*", text) or ([text] if text else [])


def split_in(text: str, parts: int) -> list[str]:
    """Split text into at most `parts` non-empty slices (at least one, maybe empty)."""
    if not text:
        return [""]
    size = max(1, -(-len(text) // parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _tool_call(spec: ToolCallSpec, id_prefix: str) -> ReplyToolCall:
    call_id = spec.id or new_id(id_prefix)
    if isinstance(spec.arguments, str):
        try:
            loaded = json.loads(spec.arguments)
        except ValueError:
            loaded = None
        parsed: dict[str, object] | str = loaded if isinstance(loaded, dict) else spec.arguments
        return ReplyToolCall(call_id, spec.name, spec.arguments, parsed)
    return ReplyToolCall(call_id, spec.name, json.dumps(spec.arguments), dict(spec.arguments))


def default_text(prompt: Prompt) -> str:
    if prompt.tool_result is not None:
        return f"done: {prompt.tool_result}"
    return f"echo: {prompt.last_user_text}"


def build_reply(step: Step, prompt: Prompt, *, id_prefix: str) -> Reply:
    """Resolve a step against the prompt; tool-call ids get `id_prefix` when unscripted."""
    calls = tuple(_tool_call(spec, id_prefix) for spec in step.tool_calls)
    text = step.text
    if text is None:
        text = "" if calls else default_text(prompt)
    usage = step.usage
    input_tokens = prompt.input_words
    output_tokens = count_words([text, *(call.arguments for call in calls)])
    cached = 0
    if usage is not None:
        input_tokens = usage.input_tokens if usage.input_tokens is not None else input_tokens
        output_tokens = usage.output_tokens if usage.output_tokens is not None else output_tokens
        cached = min(usage.cached_input_tokens, input_tokens)
    return Reply(
        text=text,
        tool_calls=calls,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_input_tokens=cached,
        finish_reason=step.finish_reason,
    )
