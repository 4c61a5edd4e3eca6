"""The generic Toolset (schemas, dispatch, errors) and the coder's workspace tools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from app.tools.errors import PathRefused
from app.tools.toolset import Tool, ToolResult, Toolset, portable_schema
from app.tools.workspace import Workspace, WorkspaceLimits
from app.tools.workspace_tools import READ_MAX_CHARS, WorkspaceTools


class EchoArgs(BaseModel):
    text: str = Field(min_length=1, description="what to echo")
    times: int | None = Field(None, ge=1)


async def _echo(args: EchoArgs) -> ToolResult:
    return ToolResult(args.text * (args.times or 1), data={"n": args.times})


async def _refuse(args: EchoArgs) -> ToolResult:
    raise PathRefused("no, not there")


async def _crash(args: EchoArgs) -> ToolResult:
    raise RuntimeError("bug")


def _walk(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [node, *(n for v in node.values() for n in _walk(v))]
    if isinstance(node, list):
        return [n for v in node for n in _walk(v)]
    return []


def test_schema_is_generated_and_portable() -> None:
    """Schemas come from the pydantic model, without titles, additionalProperties or
    nullable anyOf (which some vendors reject)."""
    schema = portable_schema(EchoArgs)
    assert schema["type"] == "object" and schema["required"] == ["text"]
    assert schema["properties"]["times"] == {"minimum": 1, "type": "integer"}
    for node in _walk(schema):
        assert not {"title", "additionalProperties", "anyOf"} & set(node)


async def test_call_dispatches_and_turns_failures_into_error_results() -> None:
    """Unknown tools, invalid arguments, tool errors and crashes become is_error results."""
    tools = Toolset(
        [
            Tool("echo", "Echo text.", EchoArgs, _echo),
            Tool("refuse", "Refuse.", EchoArgs, _refuse),
            Tool("crash", "Crash.", EchoArgs, _crash),
        ]
    )
    assert [s.name for s in tools.specs()] == ["echo", "refuse", "crash"]
    ok = await tools.call("echo", {"text": "ab", "times": 2})
    assert ok == ToolResult("abab", False, {"n": 2})
    unknown = await tools.call("rm_rf", {})
    assert unknown.is_error and "available: echo, refuse, crash" in unknown.content
    invalid = await tools.call("echo", {"text": "", "extra": 1})
    assert invalid.is_error and invalid.data["error"] == "invalid_arguments"
    assert "text" in invalid.content
    refused = await tools.call("refuse", {"text": "x"})
    assert refused == ToolResult("no, not there", True, {"error": "path_refused"})
    crashed = await tools.call("crash", {"text": "x"})
    assert crashed.is_error and crashed.data["error"] == "internal"


@pytest.fixture
def coder_tools(tmp_path: Path) -> tuple[Toolset, list[str], Path]:
    changed: list[str] = []
    ws = Workspace(tmp_path, WorkspaceLimits(max_file_bytes=10_000_000))
    return WorkspaceTools(ws, changed).toolset(), changed, tmp_path


async def test_workspace_tools_round_trip(coder_tools: tuple[Toolset, list[str], Path]) -> None:
    """write, list, read (with a line range), edit, search and delete work together and
    record each changed path once, in canonical form."""
    tools, changed, root = coder_tools
    assert [s.name for s in tools.specs()] == [
        "list_files",
        "read_file",
        "write_file",
        "edit_file",
        "search_files",
        "delete_file",
    ]
    wrote = await tools.call("write_file", {"path": "./src//app.py", "content": "a = 1\nb = 2\n"})
    assert not wrote.is_error and wrote.content == "created src/app.py (12 bytes)"
    listed = await tools.call("list_files", {"glob": "**/*.py"})
    assert listed.content == "src/app.py (12 bytes)"
    part = await tools.call("read_file", {"path": "src/app.py", "start_line": 2, "end_line": 2})
    assert part.content == "b = 2\n" and part.data["total_lines"] == 2
    edit = {"path": "src/app.py", "old_text": "b = 2", "new_text": "b = 3"}
    edited = await tools.call("edit_file", edit)
    assert edited.content == "edited src/app.py"
    assert (root / "src" / "app.py").read_text() == "a = 1\nb = 3\n"
    found = await tools.call("search_files", {"pattern": r"^b = \d"})
    assert found.content == "src/app.py:2: b = 3"
    await tools.call("write_file", {"path": "notes.md", "content": "x"})
    gone = await tools.call("delete_file", {"path": "notes.md"})
    assert gone.content == "deleted notes.md (1 bytes)"
    assert changed == ["src/app.py", "notes.md"]


async def test_edit_refuses_missing_and_ambiguous_matches(
    coder_tools: tuple[Toolset, list[str], Path],
) -> None:
    """edit_file changes nothing unless old_text occurs exactly once."""
    tools, changed, root = coder_tools
    await tools.call("write_file", {"path": "a.txt", "content": "x = 1\nx = 1\n"})
    changed.clear()
    edit = {"path": "a.txt", "old_text": "x = 1", "new_text": "y"}
    ambiguous = await tools.call("edit_file", edit)
    assert ambiguous.is_error and "occurs 2 times" in ambiguous.content
    missing = await tools.call("edit_file", {"path": "a.txt", "old_text": "zzz", "new_text": "y"})
    assert missing.is_error and "not found" in missing.content
    empty = await tools.call("edit_file", {"path": "a.txt", "old_text": "", "new_text": "y"})
    assert empty.is_error and empty.data["error"] == "invalid_arguments"
    assert (root / "a.txt").read_text() == "x = 1\nx = 1\n" and changed == []


async def test_refusals_reach_the_model_as_readable_errors(
    coder_tools: tuple[Toolset, list[str], Path],
) -> None:
    """Traversal, bad regexes and line ranges are tool errors with a reason, never raised."""
    tools, changed, _ = coder_tools
    cases = [
        ("read_file", {"path": "../../etc/passwd"}, "'..' is not allowed"),
        ("write_file", {"path": "/etc/evil", "content": "x"}, "not relative"),
        ("delete_file", {"path": "C:\\boot.ini"}, "backslashes"),
        ("search_files", {"pattern": "(a+)+$"}, "pattern refused"),
        ("read_file", {"path": "nope.txt"}, "does not exist"),
    ]
    for name, args, reason in cases:
        result = await tools.call(name, args)
        assert result.is_error and reason in result.content, (name, result)
    await tools.call("write_file", {"path": "one.txt", "content": "1\n"})
    past = await tools.call("read_file", {"path": "one.txt", "start_line": 5})
    assert past.is_error and "past the end" in past.content
    assert changed == ["one.txt"]


async def test_large_reads_are_cut_at_a_line_with_a_note(
    coder_tools: tuple[Toolset, list[str], Path],
) -> None:
    """A read longer than READ_MAX_CHARS stops at a whole line and says how to read on."""
    tools, _, root = coder_tools
    line = "y" * 99 + "\n"
    (root / "big.txt").write_text(line * (READ_MAX_CHARS // 100 + 50))
    result = await tools.call("read_file", {"path": "big.txt"})
    assert len(result.content) < READ_MAX_CHARS + 200
    assert "[truncated after line 1000 of 1050" in result.content
    assert result.data["end_line"] == 1000


def test_specs_serialise_to_json() -> None:
    """Every spec's parameters are plain JSON (what providers send on the wire)."""
    tools = WorkspaceTools(Workspace(Path(".")), []).toolset()
    for spec in tools.specs():
        assert json.loads(json.dumps(spec.parameters))["type"] == "object"
