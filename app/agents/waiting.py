"""Waiting for a task to finish without polling: one finish signal per awaited task.

The executor calls `finished(task_id)` the moment a task's outcome is stored; every waiter
on that task wakes at once. `release_all()` (drain) wakes every waiter too, so no request
holds the server open while it shuts down, and later waits return at once. Waits made for
HTTP clients (`?wait=`) go through a `WaitSlot`, which counts against `limit` so that a
burst of waiting clients cannot pile up without bound; internal waits (cancel, the
orchestrator's `check_agent_result`) are not counted.
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
        self._signals: dict[str, asyncio.Event] = {}
        self._waiting: dict[str, int] = {}  # task id -> waiters holding its signal
        self._slots = 0
        self._released = asyncio.Event()

    @property
    def slots_in_use(self) -> int:
        return self._slots

    @property
    def pending(self) -> int:
        """Task ids with at least one waiter (for tests: nothing may leak)."""
        return len(self._signals)

    def finished(self, task_id: str) -> None:
        """Wake everyone waiting on `task_id` (its outcome is stored)."""
        signal = self._signals.pop(task_id, None)
        self._waiting.pop(task_id, None)
        if signal is not None:
            signal.set()

    def release_all(self) -> None:
        """Drain: wake every waiter now, and let no later wait hold."""
        self._released.set()

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
        drain). The signal is taken before the first read, so a finish in between wakes us."""
        signal = self._signals.setdefault(task_id, asyncio.Event())
        self._waiting[task_id] = self._waiting.get(task_id, 0) + 1
        try:
            task = await read(task_id)
            if task.state.finished or timeout_s <= 0 or self._released.is_set():
                return task
            await self._first_of(signal, timeout_s)
            return await read(task_id)
        finally:
            self._forget(task_id, signal)

    async def _first_of(self, signal: asyncio.Event, timeout_s: float) -> None:
        waits = [asyncio.ensure_future(signal.wait()), asyncio.ensure_future(self._released.wait())]
        try:
            await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    def _forget(self, task_id: str, signal: asyncio.Event) -> None:
        """Drop the signal once its last waiter leaves (a finished task's is already gone)."""
        if self._signals.get(task_id) is not signal:
            return
        left = self._waiting.get(task_id, 1) - 1
        if left > 0:
            self._waiting[task_id] = left
        else:
            self._waiting.pop(task_id, None)
            del self._signals[task_id]
