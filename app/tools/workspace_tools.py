"""The coder's tools over one `Workspace`: list, read, write, edit, search, delete. No shell.

Writes and edits run on the event loop, synchronously: a cancellation can only land before
or after one, never inside (and the sandbox renames a complete temp file into place anyway).
Reads, listings and searches run in a thread. Paths that a call changed are appended to
`changed` (canonical form, once each) for the task's `files_changed`.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, ConfigDict, Field

from app.tools.errors import EditMismatch, ToolError
from app.tools.patterns import search_regex
from app.tools.search import search
from app.tools.toolset import Tool, ToolResult, Toolset
from app.tools.workspace import Workspace, parse_path

READ_MAX_CHARS = 100_000
PATH_HELP = "path relative to the workspace root, '/'-separated (no '..', no absolute paths)"


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ListFilesArgs(_Args):
    glob: str = Field("**", description="'**' any depth, '*' within a name; e.g. 'src/**/*.py'")
    limit: int = Field(200, ge=1, le=1000, description="most paths to return")


class ReadFileArgs(_Args):
    path: str = Field(description=PATH_HELP)
    start_line: int | None = Field(None, ge=1, description="first line to return (1-based)")
    end_line: int | None = Field(None, ge=1, description="last line to return (inclusive)")


class WriteFileArgs(_Args):
    path: str = Field(description=PATH_HELP)
    content: str = Field(description="the complete new text of the file")


class EditFileArgs(_Args):
    path: str = Field(description=PATH_HELP)
    old_text: str = Field(min_length=1, description="exact text to replace; must occur once")
    new_text: str = Field(description="replacement text")


class SearchFilesArgs(_Args):
    pattern: str = Field(description="Python regular expression, matched line by line")
    glob: str = Field("**", description="only files whose path matches this glob")
    ignore_case: bool = False
    max_results: int = Field(50, ge=1, le=200)


class DeleteFileArgs(_Args):
    path: str = Field(description=PATH_HELP)


def slice_lines(text: str, start: int | None, end: int | None) -> tuple[str, int, int, int]:
    """(text of lines start..end, first, last, total lines); 1-based, inclusive."""
    lines = text.splitlines(keepends=True)
    total = len(lines)
    first = start or 1
    last = min(end or total, total)
    if total and first > total:
        raise ToolError(f"start_line {first} is past the end of the file ({total} lines)")
    if end is not None and end < first:
        raise ToolError("end_line must not be before start_line")
    chosen: list[str] = []
    size = 0
    for number in range(first, last + 1):
        line = lines[number - 1]
        if size + len(line) > READ_MAX_CHARS and chosen:
            note = f"[truncated after line {number - 1} of {total}; read on with start_line]"
            return "".join(chosen) + note, first, number - 1, total
        chosen.append(line)
        size += len(line)
    return "".join(chosen), first, last, total


class WorkspaceTools:
    def __init__(self, workspace: Workspace, changed: list[str]) -> None:
        self._ws = workspace
        self._changed = changed

    def toolset(self) -> Toolset:
        return Toolset(
            [
                Tool("list_files", "List files in the workspace.", ListFilesArgs, self.list_files),
                Tool(
                    "read_file",
                    "Read a UTF-8 text file, optionally a range of lines.",
                    ReadFileArgs,
                    self.read_file,
                ),
                Tool(
                    "write_file",
                    "Create or replace a text file with the given content.",
                    WriteFileArgs,
                    self.write_file,
                ),
                Tool(
                    "edit_file",
                    "Replace one exact occurrence of old_text with new_text in a file.",
                    EditFileArgs,
                    self.edit_file,
                ),
                Tool(
                    "search_files",
                    "Search text files for lines matching a regular expression.",
                    SearchFilesArgs,
                    self.search_files,
                ),
                Tool("delete_file", "Delete a file.", DeleteFileArgs, self.delete_file),
            ]
        )

    def _mark(self, path: str) -> str:
        canonical = "/".join(parse_path(path))
        if canonical not in self._changed:
            self._changed.append(canonical)
        return canonical

    async def list_files(self, args: ListFilesArgs) -> ToolResult:
        files, more = await asyncio.to_thread(self._ws.list_files, args.glob, args.limit)
        lines = [f"{f.path} ({f.size} bytes)" for f in files] or ["(no files match)"]
        if more:
            lines.append("[more files not shown: narrow the glob or raise limit]")
        data = {"files": [f.path for f in files], "truncated": more}
        return ToolResult("\n".join(lines), data=data)

    async def read_file(self, args: ReadFileArgs) -> ToolResult:
        text = await asyncio.to_thread(self._ws.read_text, args.path)
        content, first, last, total = slice_lines(text, args.start_line, args.end_line)
        data = {"path": args.path, "start_line": first, "end_line": last, "total_lines": total}
        return ToolResult(content, data=data)

    async def write_file(self, args: WriteFileArgs) -> ToolResult:
        created = self._ws.write_text(args.path, args.content)
        path = self._mark(args.path)
        size = len(args.content.encode())
        verb = "created" if created else "replaced"
        return ToolResult(f"{verb} {path} ({size} bytes)", data={"path": path, "bytes": size})

    async def edit_file(self, args: EditFileArgs) -> ToolResult:
        text = self._ws.read_text(args.path)
        count = text.count(args.old_text)
        if count == 0:
            raise EditMismatch(
                f"old_text was not found in {args.path}; read the file and copy the text exactly"
            )
        if count > 1:
            raise EditMismatch(
                f"old_text occurs {count} times in {args.path}; "
                "include more surrounding text so it matches exactly once"
            )
        self._ws.write_text(args.path, text.replace(args.old_text, args.new_text, 1))
        path = self._mark(args.path)
        return ToolResult(f"edited {path}", data={"path": path})

    async def search_files(self, args: SearchFilesArgs) -> ToolResult:
        regex = search_regex(args.pattern, ignore_case=args.ignore_case)
        found = await asyncio.to_thread(
            search, self._ws, regex, glob=args.glob, max_hits=args.max_results
        )
        lines = [f"{h.path}:{h.line}: {h.text}" for h in found.hits] or ["(no matches)"]
        if found.truncated:
            lines.append(f"[stopped at {args.max_results} matches]")
        if found.stopped_early:
            lines.append("[search stopped early (time or file limit): narrow the glob]")
        if found.skipped_files:
            lines.append(f"[{found.skipped_files} binary, large or unreadable files skipped]")
        data = {"matches": len(found.hits), "truncated": found.truncated or found.stopped_early}
        return ToolResult("\n".join(lines), data=data)

    async def delete_file(self, args: DeleteFileArgs) -> ToolResult:
        size = self._ws.delete(args.path)
        path = self._mark(args.path)
        return ToolResult(f"deleted {path} ({size} bytes)", data={"path": path})
