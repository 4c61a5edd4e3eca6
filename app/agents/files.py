"""Read a coder agent's workspace over HTTP, through the same sandbox as its tools.

    GET /v1/agents/{name}/files?glob=**&limit=1000   list regular files
    GET /v1/agents/{name}/files/{path}               one text file's content

Refusals use the service's error shape: 404 for a missing agent, workspace or file; 400 for
a refused path, a non-regular or binary file; 413 for a file over the size limit.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from app.agents.deps import ManagerDep
from app.agents.endpoints import AgentName
from app.core.deps import AuthDep
from app.core.errors import AppError, BadRequest, NotFound, PayloadTooLarge
from app.core.openapi import problems
from app.tools.errors import FileMissing, FileTooLarge, WorkspaceError
from app.tools.workspace import MAX_PATH_CHARS

router = APIRouter(
    prefix="/v1",
    dependencies=[AuthDep],
    tags=["agents"],
    responses=problems(400, 401, 404, 413, 422),
)


# The paths the OpenAPI document promises to look up: names of letters, digits, '_', '-' and
# '.', not starting with '.', at most 63 characters, joined by '/'. The sandbox serves more
# (any UTF-8 name up to 255 bytes, hidden files) and answers 400 `path_refused` for what it
# refuses ('..', absolute or '~' paths, drive letters, links, ...); a plain shape without
# look-aheads keeps the document cheap for test generators to satisfy.
PATH_SHAPE = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,62}(/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,62})*$"


class FileEntry(BaseModel):
    path: str
    size: int
    modified_at: float


class FileList(BaseModel):
    files: list[FileEntry]
    truncated: bool


class FileContent(BaseModel):
    path: str
    size: int
    content: str


def _http_error(exc: WorkspaceError) -> AppError:
    if isinstance(exc, FileMissing):
        return NotFound(exc.message, reason=exc.kind)
    if isinstance(exc, FileTooLarge):
        return PayloadTooLarge(exc.message, reason=exc.kind)
    return BadRequest(exc.message, reason=exc.kind)


@router.get("/agents/{name}/files", response_model=FileList)
async def list_files(
    name: AgentName,
    manager: ManagerDep,
    glob: Annotated[str, Query(min_length=1, max_length=256)] = "**",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> FileList:
    try:
        files, more = await manager.list_agent_files(name, glob, limit)
    except WorkspaceError as exc:
        raise _http_error(exc) from None
    entries = [FileEntry(path=f.path, size=f.size, modified_at=f.modified_at) for f in files]
    return FileList(files=entries, truncated=more)


@router.get("/agents/{name}/files/{path:path}", response_model=FileContent)
async def read_file(
    name: AgentName,
    path: Annotated[
        str, Path(max_length=MAX_PATH_CHARS, json_schema_extra={"pattern": PATH_SHAPE})
    ],
    manager: ManagerDep,
) -> FileContent:
    try:
        content = await manager.read_agent_file(name, path)
    except WorkspaceError as exc:
        raise _http_error(exc) from None
    return FileContent(path=path, size=len(content.encode()), content=content)
