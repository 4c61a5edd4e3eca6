"""A set of tools a model can call: typed arguments in, a `ToolResult` out.

A tool is an async function of one pydantic model; the JSON schema the model sees is
generated from that model (`model_json_schema()`, made portable across OpenAI, Anthropic and
Gemini). `Toolset.call` never raises for a bad call — an unknown tool, invalid arguments, a
`ToolError` or an `AppError` from the service becomes an `is_error` result the model can read
and correct. Nothing here knows about agent loops, so a realtime session can reuse it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import structlog
from pydantic import BaseModel, ValidationError

from app.core.errors import AppError
from app.providers.base import ToolSpec
from app.tools.errors import ToolError

log = structlog.get_logger(__name__)

ArgsT = TypeVar("ArgsT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ToolResult:
    content: str  # what the model reads
    is_error: bool = False
    data: dict[str, Any] = field(default_factory=dict)  # structured detail for events/callers

    @classmethod
    def error(cls, message: str, kind: str) -> ToolResult:
        return cls(message, True, {"error": kind})


@dataclass(frozen=True, slots=True)
class Tool(Generic[ArgsT]):
    name: str
    description: str
    args: type[ArgsT]
    run: Callable[[ArgsT], Awaitable[ToolResult]]

    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, portable_schema(self.args))


def portable_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema without what some vendors reject: titles,
    `additionalProperties`, and `anyOf [X, null]` for optional fields (becomes X)."""
    return _clean(model.model_json_schema())  # type: ignore[no-any-return]


def _clean(node: Any) -> Any:
    if isinstance(node, list):
        return [_clean(item) for item in node]
    if not isinstance(node, dict):
        return node
    options = node.get("anyOf")
    if isinstance(options, list):
        concrete = [o for o in options if o != {"type": "null"}]
        if len(concrete) == 1 and len(options) == 2:
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            node = {**concrete[0], **rest}
    return {
        key: _clean(value)
        for key, value in node.items()
        if key not in ("title", "additionalProperties") and not (key == "default" and value is None)
    }


def _describe(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(part) for part in err.get("loc", ())) or "arguments"
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(problems)


class Toolset:
    def __init__(self, tools: Iterable[Tool[Any]]) -> None:
        self._tools = {tool.name: tool for tool in tools}

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def specs(self) -> list[ToolSpec]:
        return [tool.spec() for tool in self._tools.values()]

    async def call(self, name: str, arguments: Mapping[str, Any]) -> ToolResult:
        tool = self._tools.get(name)
        if tool is None:
            known = ", ".join(self._tools)
            return ToolResult.error(f"unknown tool {name!r}; available: {known}", "unknown_tool")
        try:
            args = tool.args.model_validate(dict(arguments))
        except ValidationError as exc:
            return ToolResult.error(
                f"invalid arguments for {name}: {_describe(exc)}", "invalid_arguments"
            )
        try:
            return await tool.run(args)
        except ToolError as exc:
            return ToolResult.error(exc.message, exc.kind)
        except AppError as exc:
            return ToolResult.error(exc.message, exc.error_type)
        except Exception as exc:
            log.exception("tool_crashed", tool=name)
            message = f"{name} failed unexpectedly ({type(exc).__name__})"
            return ToolResult.error(message, "internal")
