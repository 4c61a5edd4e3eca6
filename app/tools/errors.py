"""Why a tool or the file sandbox refused or failed, as one small exception tree.

    ToolError (kind "tool_error")              any failure a tool reports back to the model
    ├── WorkspaceError (kind "refused")        the sandbox said no
    │   ├── PathRefused ("path_refused")       '..', absolute, '~', NUL, drive/UNC, symlink...
    │   ├── FileMissing ("not_found")
    │   ├── NotRegularFile ("not_a_regular_file")  directory, FIFO, device, socket, hard link
    │   ├── FileTooLarge ("too_large")         over the per-file size limit
    │   ├── QuotaExceeded ("quota_exceeded")   the write would take the workspace over quota
    │   ├── BinaryFile ("binary")              text tools refuse NUL bytes / invalid UTF-8
    │   └── PatternRefused ("pattern_refused") a glob or regex that is too long or too risky
    └── EditMismatch ("edit_mismatch")         edit_file's search text is missing or ambiguous

None of these knows about HTTP: the files API maps `kind` to a status once, in
`app.agents.files`; the tool loop turns them into `is_error` tool results.
"""

from __future__ import annotations

from typing import ClassVar


class ToolError(Exception):
    kind: ClassVar[str] = "tool_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class WorkspaceError(ToolError):
    kind = "refused"


class PathRefused(WorkspaceError):
    kind = "path_refused"


class FileMissing(WorkspaceError):
    kind = "not_found"


class NotRegularFile(WorkspaceError):
    kind = "not_a_regular_file"


class FileTooLarge(WorkspaceError):
    kind = "too_large"


class QuotaExceeded(WorkspaceError):
    kind = "quota_exceeded"


class BinaryFile(WorkspaceError):
    kind = "binary"


class PatternRefused(WorkspaceError):
    kind = "pattern_refused"


class EditMismatch(ToolError):
    kind = "edit_mismatch"
