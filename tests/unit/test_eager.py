"""Tasks started eagerly (app/core/eager.py): the first step runs inside the call, as the
task, in the task's context; the rest runs as a task's steps would."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from app.core.eager import create_eager_task, finished_eagerly

where: contextvars.ContextVar[str] = contextvars.ContextVar("where", default="caller")


async def test_the_first_step_runs_before_the_call_returns_as_the_new_task() -> None:
    caller = asyncio.current_task()
    seen: list[object] = []
    gate = asyncio.get_running_loop().create_future()

    async def body() -> str:
        seen.append(asyncio.current_task())
        value = await gate
        seen.append(asyncio.current_task())
        return f"got {value}"

    task = create_eager_task(body(), name="eager")
    assert seen == [task]  # ran already, and current_task() was the task itself
    assert asyncio.current_task() is caller  # the caller's task is current again
    assert not finished_eagerly(task)
    gate.set_result(7)
    assert await task == "got 7"
    assert seen == [task, task]
    assert task.get_name() == "eager"


async def test_a_coroutine_that_ends_in_its_first_step() -> None:
    async def at_once() -> int:
        return 3

    async def fails_at_once() -> int:
        raise ValueError("no")

    done = create_eager_task(at_once())
    failed = create_eager_task(fails_at_once())
    assert finished_eagerly(done)
    assert not finished_eagerly(failed)  # an error is the task's to report, when awaited
    assert await done == 3
    with pytest.raises(ValueError, match="no"):
        await failed


async def test_a_cancel_before_the_tasks_own_first_step_reaches_the_coroutine() -> None:
    waited_on = asyncio.get_running_loop().create_future()
    cleaned_up: list[str] = []

    async def body() -> None:
        try:
            await waited_on
        finally:
            cleaned_up.append("finally")

    task = create_eager_task(body())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert waited_on.cancelled()  # as a task's cancel cancels what it waits on
    assert cleaned_up == ["finally"]


async def test_a_cancel_while_it_waits_later_on() -> None:
    first = asyncio.get_running_loop().create_future()
    second = asyncio.get_running_loop().create_future()
    steps: list[str] = []
    reached_second = asyncio.Event()

    async def body() -> None:
        await first
        steps.append("second wait")
        reached_second.set()
        try:
            await second
        except asyncio.CancelledError:
            steps.append("cancelled")
            raise

    task = create_eager_task(body())
    first.set_result(None)
    await reached_second.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert steps == ["second wait", "cancelled"]


async def test_the_task_keeps_one_context_and_the_caller_keeps_its_own() -> None:
    gate = asyncio.get_running_loop().create_future()

    async def body() -> str:
        where.set("task")
        await gate
        return where.get()

    task = create_eager_task(body())
    assert where.get() == "caller"
    gate.set_result(None)
    assert await task == "task"

    given = contextvars.Context()
    given.run(where.set, "given")

    async def reads() -> str:
        return where.get()

    assert await create_eager_task(reads(), context=given) == "given"


async def test_a_timeout_entered_in_the_first_step_cancels_the_task_not_the_caller() -> None:
    never = asyncio.get_running_loop().create_future()

    async def body() -> str:
        try:
            async with asyncio.timeout(0):  # expires at the loop's next turn
                await never
        except TimeoutError:
            return "timed out"
        return "not reached"

    task = create_eager_task(body())
    assert await task == "timed out"
    assert not asyncio.current_task().cancelling()  # type: ignore[union-attr]
