"""In-memory state of one live agent: its queue, worker, running task and recent history."""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from app.agents.schemas import Agent, Task, TaskState
from app.providers.base import Message

INTERRUPTED_MESSAGE = (
    "the service stopped while this task was running; it was not restarted because a partial "
    "run may already have had effects — submit it again if that is safe"
)
CANCELLED_MESSAGE = "cancelled by request"


@dataclass(eq=False)
class AgentRuntime:
    agent: Agent
    queue: deque[Task] = field(default_factory=deque)
    worker: asyncio.Task[None] | None = None
    job: asyncio.Task[None] | None = None
    running: Task | None = None
    cancel_as: dict[str, TaskState] = field(default_factory=dict)
    # recent succeeded tasks as (prompt, result) messages, made once per task (every
    # later task sends them again); None until first needed
    history: deque[tuple[Message, Message]] | None = None
    deleting: bool = False  # a delete is being stored: refuse new tasks

    def cancel_running(self, as_state: TaskState) -> asyncio.Task[None] | None:
        """Cancel the running task, to be recorded as `as_state`; return its job if any."""
        if self.job is None or self.job.done() or self.running is None:
            return None
        self.cancel_as[self.running.id] = as_state
        self.job.cancel()
        return self.job


TASK_ID = re.compile(r"[0-9a-f]{1,32}")  # new_id() makes 32; other shapes name no task


class TaskBook:
    """Tasks as stored, kept in memory: every queued and running task, and the most recently
    finished ones, so reading a live task never touches the database. Entries change only
    in the store writer's `on_commit` callbacks, i.e. right after the change is stored and
    before its event is published; a finished task never changes again, so keeping it is
    safe with any number of replicas."""

    def __init__(self, finished_max: int = 1_000) -> None:
        self._live: dict[str, Task] = {}
        self._finished: OrderedDict[str, Task] = OrderedDict()
        self._finished_max = finished_max

    def get(self, task_id: str) -> Task | None:
        return self._live.get(task_id) or self._finished.get(task_id)

    def put_live(self, task: Task) -> None:
        self._live[task.id] = task

    def put_finished(self, task: Task) -> None:
        self._live.pop(task.id, None)
        self._finished[task.id] = task
        if len(self._finished) > self._finished_max:
            self._finished.popitem(last=False)
