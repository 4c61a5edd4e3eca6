"""The operator's permissions for a claude_code agent, decided by the service, not the model.

Tool set: the agent's `allowed_tools`, else `DEFAULT_TOOLS` (plus the shell tools when
BIGTHREE_CLAUDE_CODE_ALLOW_BASH is set), minus its `disallowed_tools`. Claude Code is only
offered these tools (so the model never sees the others), and the permission layer — a
PreToolUse hook on every tool use, subagents' included, and the can_use_tool callback when
Claude Code would ask — refuses anything else.

Paths: every path argument of a tool (`file_path`, `notebook_path`, `path`, the directory part
of a Glob `pattern`) must lie inside the workspace, checked with the file sandbox's
`contained_path` ('..' and symbolic links resolved, '~' refused). Reads are held to the
workspace too. A Bash command line is not path-checked: an agent given Bash can reach what
the service's user can, so give it only where you would hand over a shell.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from app.agents.schemas import ClaudeCodeOptions
from app.tools.errors import PathRefused
from app.tools.workspace import contained_path

# Claude Code's file tools (names differ between CLI versions; unknown names are ignored by
# the CLI), its planner and its subagents (which run under the same permission layer)
DEFAULT_TOOLS: tuple[str, ...] = (
    "Read",
    "Write",
    "Edit",
    "MultiEdit",
    "NotebookEdit",
    "Glob",
    "Grep",
    "LS",
    "TodoWrite",
    "Agent",
    "Task",
)
SHELL_TOOLS: tuple[str, ...] = ("Bash", "BashOutput", "KillShell")
WRITE_TOOLS = frozenset({"Write", "Edit", "MultiEdit", "NotebookEdit"})
PATH_KEYS: tuple[str, ...] = ("file_path", "notebook_path", "path")
_GLOB_MAGIC = re.compile(r"[*?\[{]")

Rule = Literal["tool_set", "workspace"]


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str = ""
    rule: Rule | None = None  # which rule refused


ALLOW = Decision(True)


def tool_set(options: ClaudeCodeOptions, *, allow_bash: bool) -> tuple[str, ...]:
    """The tools an agent may use, in a stable order."""
    if options.allowed_tools is not None:
        base = tuple(dict.fromkeys(options.allowed_tools))
    else:
        base = DEFAULT_TOOLS + (SHELL_TOOLS if allow_bash else ())
    refused = set(options.disallowed_tools)
    return tuple(tool for tool in base if tool not in refused)


def _glob_start(pattern: str) -> str | None:
    """Where an absolute (or '~') Glob pattern starts looking, or None for a relative one."""
    if not pattern.startswith(("/", "~")):
        return None
    literal = _GLOB_MAGIC.split(pattern, maxsplit=1)[0]
    return literal.rsplit("/", 1)[0] or "/"


@dataclass(frozen=True, slots=True)
class ToolPolicy:
    tools: tuple[str, ...]
    workspace: Path

    @classmethod
    def for_agent(
        cls, options: ClaudeCodeOptions, workspace: Path, *, allow_bash: bool
    ) -> ToolPolicy:
        return cls(tool_set(options, allow_bash=allow_bash), workspace)

    def decide(self, tool: str, tool_input: Mapping[str, Any]) -> Decision:
        """Whether `tool` may run with `tool_input`, and if not, why (said to the model)."""
        if tool not in self.tools:
            return Decision(
                False,
                f"{tool} is not allowed for this agent (its tools: {', '.join(self.tools)})",
                "tool_set",
            )
        for key in PATH_KEYS:
            value = tool_input.get(key)
            if value is not None and (refused := self._outside(value)) is not None:
                return refused
        pattern = tool_input.get("pattern")
        if tool == "Glob" and isinstance(pattern, str):
            if ".." in pattern.split("/"):
                return Decision(False, "refused: no '..' in a Glob pattern", "workspace")
            start = _glob_start(pattern)
            if start is not None and (refused := self._outside(start)) is not None:
                return refused
        return ALLOW

    def _outside(self, value: Any) -> Decision | None:
        try:
            contained_path(self.workspace, value)
        except PathRefused as exc:
            return Decision(False, f"refused: {exc.message}", "workspace")
        return None

    def relative(self, path: Any) -> str | None:
        """`path` relative to the workspace (for `files_changed`), or None if outside."""
        try:
            real = contained_path(self.workspace, path)
        except PathRefused:
            return None
        base = contained_path(self.workspace, ".")
        return real.relative_to(base).as_posix() if real != base else None
