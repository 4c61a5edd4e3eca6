"""Tell a realtime session when the tasks it started finish, without ever blocking on them.

A `TaskWatcher` subscribes to the event hub (`task.*`) when the session starts, so no
terminal event can slip by between `command_agent` returning a task id and `watch()`; and
`watch()` also reads the task back, for one that finished before it was watched. Each task
is reported once. If the hub drops the subscription for falling behind, the watcher
subscribes again and re-reads every watched task; a hub closed for shutdown ends `run()`
with `GOING_AWAY`.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from app.agents.schemas import Task
from app.agents.service import AgentManager
from app.core.errors import AppError
from app.events.hub import GOING_AWAY, Hub, Subscription
from app.events.schemas import EventFilter, LiveEvent

log = structlog.get_logger(__name__)

TERMINAL_EVENTS = frozenset(
    f"task.{state}" for state in ("succeeded", "failed", "cancelled", "timed_out", "interrupted")
)


class TaskWatcher:
    def __init__(
        self, hub: Hub, manager: AgentManager, on_finished: Callable[[Task], None]
    ) -> None:
        self._hub = hub
        self._manager = manager
        self._on_finished = on_finished
        self._watched: set[str] = set()
        self._reported: set[str] = set()
        self._sub: Subscription = hub.subscribe(EventFilter(type="task.*"))

    @property
    def watching(self) -> frozenset[str]:
        return frozenset(self._watched)

    async def watch(self, task_id: str) -> None:
        self._watched.add(task_id)
        await self._check(task_id)

    async def run(self) -> int:
        """Report finished tasks until the hub closes the subscription for shutdown."""
        while True:
            code = await self._follow(self._sub)
            if code == GOING_AWAY:
                return code
            log.warning("realtime_task_watch_resubscribed", close_code=code)
            self._hub.unsubscribe(self._sub)
            self._sub = self._hub.subscribe(EventFilter(type="task.*"))
            for task_id in list(self._watched):
                await self._check(task_id)

    async def _follow(self, sub: Subscription) -> int:
        while (event := await sub.next()) is not None:
            await self._seen(event)
        return sub.close_code or GOING_AWAY

    async def _seen(self, event: LiveEvent) -> None:
        if event.type in TERMINAL_EVENTS and event.task_id in self._watched:
            await self._check(event.task_id)

    async def _check(self, task_id: str) -> None:
        if task_id in self._reported:
            return
        try:
            task = await self._manager.get_task(task_id)
        except AppError:
            return
        if task.state.finished and task_id not in self._reported:
            self._reported.add(task_id)
            self._watched.discard(task_id)
            self._on_finished(task)

    def close(self) -> None:
        self._hub.unsubscribe(self._sub)
