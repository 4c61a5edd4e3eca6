"""TaskWaiters: finish signals wake every waiter, nothing leaks, the limit and drain hold."""

from __future__ import annotations

import asyncio

import pytest

from app.agents.schemas import Task, TaskState, UsageOut
from app.agents.waiting import TaskWaiters
from app.core.errors import NotFound, ServiceUnavailable


class Store:
    """Task states by id, as the manager's read would return them."""

    def __init__(self) -> None:
        self.states: dict[str, TaskState] = {}

    async def read(self, task_id: str) -> Task:
        if task_id not in self.states:
            raise NotFound(task_id)
        return Task(
            id=task_id, agent="a", agent_id="a", state=self.states[task_id], prompt="p",
            usage=UsageOut(), cost_usd=0, attempts=0, timeout_s=1, created_at=0,
        )  # fmt: skip


async def test_a_finish_wakes_every_waiter_and_leaves_nothing_behind() -> None:
    """Two waiters on one task both get the finished task; no signal is left over."""
    store, waiters = Store(), TaskWaiters(limit=10)
    store.states["t"] = TaskState.RUNNING
    first = asyncio.create_task(waiters.wait("t", 60, store.read))
    second = asyncio.create_task(waiters.wait("t", 60, store.read))
    await asyncio.sleep(0)  # both run up to their wait (the read does not suspend)
    assert waiters.pending == 1 and not first.done() and not second.done()
    store.states["t"] = TaskState.SUCCEEDED
    waiters.finished("t")
    results = await asyncio.wait_for(asyncio.gather(first, second), 5)
    assert [r.state for r in results] == [TaskState.SUCCEEDED] * 2
    assert waiters.pending == 0


async def test_a_finish_wakes_its_waiter_in_the_loops_next_step() -> None:
    """The waiting request goes on in the step right after the finish: no chain of tasks
    and callbacks between them, each of which would queue behind a busy loop's work."""
    store, waiters = Store(), TaskWaiters(limit=10)
    store.states["t"] = TaskState.RUNNING
    held = asyncio.create_task(waiters.wait("t", 60, store.read))
    await asyncio.sleep(0)
    store.states["t"] = TaskState.SUCCEEDED
    waiters.finished("t")
    await asyncio.sleep(0)
    assert held.done() and held.result().state == TaskState.SUCCEEDED
    assert waiters.pending == 0


async def test_a_wait_that_runs_out_or_fails_leaves_nothing_behind() -> None:
    """A timed-out wait returns the task as it is; an unknown id raises; no signal leaks."""
    store, waiters = Store(), TaskWaiters(limit=10)
    store.states["t"] = TaskState.QUEUED
    assert (await waiters.wait("t", 0.01, store.read)).state == TaskState.QUEUED
    with pytest.raises(NotFound):
        await waiters.wait("nope", 1, store.read)
    assert waiters.pending == 0


async def test_slots_are_bounded_and_given_back() -> None:
    """Past `limit` slots a wait is refused with 503; a slot left is free again."""
    waiters = TaskWaiters(limit=1)
    async with waiters.slot():
        assert waiters.slots_in_use == 1
        with pytest.raises(ServiceUnavailable):
            async with waiters.slot():
                pass
    assert waiters.slots_in_use == 0
    async with waiters.slot():
        pass


async def test_release_all_wakes_waiters_and_later_waits_do_not_hold() -> None:
    """Drain: a held wait returns at once with the task as it is, and so does any later one."""
    store, waiters = Store(), TaskWaiters(limit=10)
    store.states["t"] = TaskState.RUNNING
    held = asyncio.create_task(waiters.wait("t", 3600, store.read))
    await asyncio.sleep(0)
    assert not held.done()
    waiters.release_all()
    assert (await asyncio.wait_for(held, 5)).state == TaskState.RUNNING
    assert (await waiters.wait("t", 3600, store.read)).state == TaskState.RUNNING
    assert waiters.pending == 0
