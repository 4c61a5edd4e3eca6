"""REST routes for agents and tasks: validate, call one AgentManager method, return a schema."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from app.agents.deps import ManagerDep, SettledManagerDep
from app.agents.schemas import (
    AGENT_NAME_PATTERN,
    Agent,
    AgentCreate,
    AgentList,
    CostReport,
    Task,
    TaskCreate,
    TaskList,
    TaskState,
)
from app.agents.service import AgentManager
from app.core.asgi import json_response
from app.core.deps import AuthDep, provided
from app.core.errors import AppError
from app.core.fast_lane import LaneEntry, LaneRequest, parse_body
from app.core.openapi import problems

router = APIRouter(prefix="/v1", dependencies=[AuthDep], tags=["agents"], responses=problems(401))

AgentName = Annotated[str, Path(max_length=64, pattern=AGENT_NAME_PATTERN)]
# any string: a malformed id names no task, so it answers 404 like an unknown one
TaskId = Annotated[str, Path(min_length=1)]
Wait = Annotated[
    float,
    Query(
        ge=0,
        description="hold the request until the task finishes (200) or this many seconds "
        "pass (202 with its current state); at most BIGTHREE_MAX_WAIT_S",
    ),
]


@router.post(
    "/agents",
    status_code=status.HTTP_201_CREATED,
    response_model=Agent,
    responses=problems(400, 409, 413, 422, 429, 503),
)
async def create_agent(spec: AgentCreate, manager: ManagerDep) -> Agent:
    return await manager.create_agent(spec)


@router.get("/agents", response_model=AgentList)
async def list_agents(manager: SettledManagerDep) -> AgentList:
    return AgentList(agents=manager.list_agents())


@router.get("/agents/{name}", response_model=Agent, responses=problems(404, 422))
async def get_agent(name: AgentName, manager: SettledManagerDep) -> Agent:
    return manager.get_agent(name)


@router.delete(
    "/agents/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=problems(404, 422)
)
async def delete_agent(name: AgentName, manager: ManagerDep) -> Response:
    await manager.delete_agent(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _json(task: Task, status_code: int = 200) -> Response:
    """The task's JSON, encoded once (`Task.json_text`), without FastAPI's second
    validation pass: a task is submitted and read many times."""
    return json_response(task.json_text(), status_code)


@router.post(
    "/agents/{name}/tasks",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Task,
    responses={
        200: {"model": Task, "description": "with `wait`: the task has finished"},
        **problems(400, 404, 409, 413, 422, 429, 503),
    },
)
async def submit_task(
    name: AgentName, spec: TaskCreate, manager: ManagerDep, wait: Wait = 0
) -> Response:
    return _submitted(await manager.submit(name, spec, wait_s=wait), wait)


@router.get("/agents/{name}/tasks", response_model=TaskList, responses=problems(404, 422))
async def list_tasks(
    name: AgentName, manager: ManagerDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> TaskList:
    return TaskList(tasks=await manager.list_tasks(name, limit))


@router.get("/tasks", response_model=TaskList, responses=problems(422))
async def recent_tasks(
    manager: ManagerDep,
    agent: Annotated[str | None, Query(max_length=64)] = None,
    state: TaskState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> TaskList:
    """The newest tasks across agents, newest first (tasks of deleted agents included)."""
    return TaskList(tasks=await manager.recent_tasks(agent=agent, state=state, limit=limit))


@router.get(
    "/tasks/{task_id}",
    response_model=Task,
    responses={
        202: {"model": Task, "description": "with `wait`: not finished in time"},
        **problems(404, 422),
    },
)
async def get_task(task_id: TaskId, manager: ManagerDep, wait: Wait = 0) -> Response:
    """A live or recently finished task is read from memory, never from the database."""
    return _read(await manager.get_task(task_id, wait_s=wait), wait)


@router.get("/costs", response_model=CostReport)
async def report_costs(manager: ManagerDep) -> CostReport:
    return await manager.report_costs()


@router.post("/tasks/{task_id}/cancel", response_model=Task, responses=problems(404, 409, 422))
async def cancel_task(task_id: TaskId, manager: ManagerDep) -> Task:
    return await manager.cancel_task(task_id)


# The same two routes through the fast lane (app/core/fast_lane.py): the most frequent
# requests, answered as above without FastAPI's routing and dependency solving. They take
# only what the routes above would accept; the rest goes on to them.


async def lane_submit_task(request: LaneRequest) -> Response | None:
    name = request.param
    if len(name) > 64 or not _AGENT_NAME.fullmatch(name):
        return None
    spec = parse_body(TaskCreate, request.body)
    if spec is None:
        return None
    manager = provided(request, "manager", AgentManager)
    try:
        return _submitted(await manager.submit(name, spec, wait_s=request.wait_s), request.wait_s)
    except AppError as exc:
        return request.error(exc)


async def lane_get_task(request: LaneRequest) -> Response | None:
    manager = provided(request, "manager", AgentManager)
    wait_s = request.wait_s
    if wait_s > 0:  # held in memory or read from the store, as the route does
        try:
            return _read(await manager.get_task(request.param, wait_s=wait_s), wait_s)
        except AppError as exc:
            return request.error(exc)
    task = await manager.current_task(request.param)
    return None if task is None else _json(task)


def _submitted(task: Task, wait_s: float) -> Response:
    """A submitted task: 200 when a wait saw it finish, else 202."""
    finished = wait_s > 0 and task.state.finished
    return _json(task, status.HTTP_200_OK if finished else status.HTTP_202_ACCEPTED)


def _read(task: Task, wait_s: float) -> Response:
    """A read task: 202 when a wait ran out before it finished, else 200."""
    unfinished = wait_s > 0 and not task.state.finished
    return _json(task, status.HTTP_202_ACCEPTED if unfinished else status.HTTP_200_OK)


_AGENT_NAME = re.compile(AGENT_NAME_PATTERN)
LANE = [
    LaneEntry(
        "POST", "/v1/agents/{name}/tasks", lane_submit_task, takes_body=True, takes_wait=True
    ),
    LaneEntry("GET", "/v1/tasks/{task_id}", lane_get_task, takes_wait=True),
]
