"""A task's artifacts over HTTP (behind auth, the service's error shapes).

GET /v1/tasks/{task_id}/artifacts                  the list, oldest first (404: no task)
GET /v1/tasks/{task_id}/artifacts/{artifact_id}    the image itself (image/png)
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from app.agents.deps import ManagerDep
from app.agents.endpoints import TaskId
from app.artifacts.schemas import ArtifactList
from app.core.deps import AuthDep
from app.core.openapi import problems

router = APIRouter(
    prefix="/v1", dependencies=[AuthDep], tags=["artifacts"], responses=problems(401, 404, 422)
)

ArtifactId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[0-9a-f]+$")]


@router.get("/tasks/{task_id}/artifacts", response_model=ArtifactList)
async def list_artifacts(task_id: TaskId, manager: ManagerDep) -> ArtifactList:
    return ArtifactList(artifacts=await manager.task_artifacts(task_id))


@router.get(
    "/tasks/{task_id}/artifacts/{artifact_id}",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "the image"}},
)
async def get_artifact(task_id: TaskId, artifact_id: ArtifactId, manager: ManagerDep) -> Response:
    artifact, data = await manager.task_artifact(task_id, artifact_id)
    # an artifact never changes once written: a client may keep it
    headers = {"cache-control": "private, max-age=86400, immutable"}
    return Response(data, media_type=artifact.mime_type, headers=headers)
