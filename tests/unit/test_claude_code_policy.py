"""The claude_code permission layer: the tool set and the workspace path check (no CLI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.agents.kinds.claude_code.policy import DEFAULT_TOOLS, ToolPolicy, tool_set
from app.agents.schemas import ClaudeCodeOptions
from app.tools.errors import PathRefused
from app.tools.workspace import contained_path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "app.py").write_text("print('hi')\n")
    (tmp_path / "secret.txt").write_text("s3cret")
    os.symlink(tmp_path / "secret.txt", ws / "link-out")
    os.symlink(ws / "src" / "app.py", ws / "link-in")
    return ws


def policy(root: Path, **options: object) -> ToolPolicy:
    return ToolPolicy.for_agent(ClaudeCodeOptions.model_validate(options), root, allow_bash=False)


def test_default_tools_are_the_file_tools_without_bash() -> None:
    """No allowed_tools: the file tools, planner and subagents; Bash only when the
    operator allows it; disallowed_tools always win."""
    assert tool_set(ClaudeCodeOptions(), allow_bash=False) == DEFAULT_TOOLS
    assert "Bash" not in DEFAULT_TOOLS
    with_bash = tool_set(ClaudeCodeOptions(), allow_bash=True)
    assert with_bash[: len(DEFAULT_TOOLS)] == DEFAULT_TOOLS and "Bash" in with_bash
    less = tool_set(ClaudeCodeOptions(disallowed_tools=["Write", "Bash"]), allow_bash=True)
    assert "Write" not in less and "Bash" not in less


def test_allowed_tools_replace_the_default_set() -> None:
    """An agent listing its tools gets exactly those (Bash included if listed), whatever
    BIGTHREE_CLAUDE_CODE_ALLOW_BASH says."""
    options = ClaudeCodeOptions(allowed_tools=["Read", "Bash", "Read"], disallowed_tools=["Glob"])
    assert tool_set(options, allow_bash=False) == ("Read", "Bash")


def test_tools_outside_the_set_are_refused(root: Path) -> None:
    p = policy(root)
    decision = p.decide("Bash", {"command": "ls"})
    assert not decision.allowed and decision.rule == "tool_set" and "Bash" in decision.reason
    assert p.decide("WebFetch", {"url": "https://example.com"}).rule == "tool_set"
    assert p.decide("Read", {"file_path": str(root / "src" / "app.py")}).allowed


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("Write", {"file_path": "/etc/passwd", "content": "x"}),
        ("Write", {"file_path": "{root}/../escape.txt", "content": "x"}),
        ("Edit", {"file_path": "../escape.txt", "old_string": "a", "new_string": "b"}),
        ("Read", {"file_path": "{root}/link-out"}),
        ("Read", {"file_path": "~/.ssh/id_rsa"}),
        ("Read", {"file_path": "{root}/src/\x00app.py"}),
        ("NotebookEdit", {"notebook_path": "/tmp/n.ipynb", "new_source": ""}),
        ("Grep", {"pattern": "key", "path": "/etc"}),
        ("Glob", {"pattern": "/etc/**/*.conf"}),
        ("Glob", {"pattern": "src/../../*"}),
    ],
)
def test_paths_outside_the_workspace_are_refused(
    root: Path, tool: str, arguments: dict[str, str]
) -> None:
    """Absolute paths elsewhere, '..', a symlink pointing out, '~', NUL: refused by the
    workspace rule, whatever the tool."""
    filled = {k: v.replace("{root}", str(root)) for k, v in arguments.items()}
    decision = policy(root).decide(tool, filled)
    assert not decision.allowed and decision.rule == "workspace", decision


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("Write", {"file_path": "{root}/new/dir/file.txt", "content": "x"}),
        ("Edit", {"file_path": "src/app.py", "old_string": "a", "new_string": "b"}),
        ("Read", {"file_path": "{root}/link-in"}),
        ("Grep", {"pattern": "print"}),
        ("Glob", {"pattern": "**/*.py"}),
        ("Glob", {"pattern": "{root}/src/*.py"}),
    ],
)
def test_paths_inside_the_workspace_are_allowed(
    root: Path, tool: str, arguments: dict[str, str]
) -> None:
    filled = {k: v.replace("{root}", str(root)) for k, v in arguments.items()}
    assert policy(root).decide(tool, filled).allowed


def test_contained_path_resolves_before_judging(root: Path) -> None:
    """A path is judged by the real file it names: links and '..' resolved first."""
    assert contained_path(root, "src/../src/app.py") == (root / "src" / "app.py").resolve()
    assert contained_path(root, str(root / "link-in")) == (root / "src" / "app.py").resolve()
    with pytest.raises(PathRefused, match="outside the workspace"):
        contained_path(root, "link-out")
    with pytest.raises(PathRefused):
        contained_path(root, "")


def test_changed_files_are_reported_relative_to_the_workspace(root: Path) -> None:
    p = policy(root)
    assert p.relative(str(root / "src" / "app.py")) == "src/app.py"
    assert p.relative("/etc/passwd") is None
