"""Waiting for a task to finish without polling: one future per waiting request.

The executor calls `finished(task_id)` the moment a task's outcome is stored; it sets the
future of every waiter on that task, and each goes on in the loop's next step.
`release_all()` (drain) wakes every waiter too, so no request holds the server open while
it shuts down, and later waits return at once. Waits made for HTTP clients (`?wait=`) go
through `slot()`, which counts against `limit` so that a burst of waiting clients
cannot pile up without bound; internal waits (cancel, the orchestrator's
`check_agent_result`) are not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from app.agents.schemas import Task
from app.core.errors import ServiceUnavailable

ReadTask = Callable[[str], Awaitable[Task]]


class TaskWaiters:
    def __init__(self, limit: int) -> None:
        self._limit = limit
        # one future per waiter, by task id: a finish sets them and each waiting request
        # goes on in the loop's next step (an Event raced against the drain signal with
        # `asyncio.wait` took four steps and two tasks per wait; in a burst of 50 waiting
        # submits each step queued behind the others', bench/README.md, run 16)
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._slots = 0
        self._released = False

    @property
    def slots_in_use(self) -> int:
        return self._slots

    @property
    def pending(self) -> int:
        """Task ids with at least one waiter (for tests: nothing may leak)."""
        return len(self._waiters)

    def finished(self, task_id: str) -> None:
        """Wake everyone waiting on `task_id` (its outcome is stored)."""
        for waiter in self._waiters.pop(task_id, ()):
            if not waiter.done():
                waiter.set_result(None)

    def release_all(self) -> None:
        """Drain: wake every waiter now, and let no later wait hold."""
        self._released = True
        for task_id in list(self._waiters):
            self.finished(task_id)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Reserve one counted wait, before any work is done on the client's behalf (a
        refused submit must not have stored its task). Raises 503 when all are taken."""
        if self._slots >= self._limit:
            raise ServiceUnavailable(
                f"{self._limit} requests are already waiting for tasks; "
                "retry later or read the task without `wait`",
            )
        self._slots += 1
        try:
            yield
        finally:
            self._slots -= 1

    async def wait(self, task_id: str, timeout_s: float, read: ReadTask) -> Task:
        """The task once it has finished, or as it is after `timeout_s` seconds (or at
        drain). The waiter is registered before the first read, so a finish in between
        wakes us."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(task_id, []).append(waiter)
        try:
            task = await read(task_id)
            if task.state.finished or timeout_s <= 0 or self._released:
                return task
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await waiter
            return await read(task_id)
        finally:
            self._forget(task_id, waiter)

    def _forget(self, task_id: str, waiter: asyncio.Future[None]) -> None:
        """Drop a waiter that is leaving (a finished task's are already gone)."""
        waiters = self._waiters.get(task_id)
        if waiters is None or waiter not in waiters:
            return
        waiters.remove(waiter)
        if not waiters:
            del self._waiters[task_id]
