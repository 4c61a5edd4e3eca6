"""Tasks that start at once: Python 3.12's eager tasks, on 3.11.

A task made with `asyncio.create_task` takes its first step one loop lap later, behind
everything already queued. In a burst that lap is long: 50 tasks submitted together each
wait for the other 49 at every hand-off from one task to the next. Python 3.12 can start a
task eagerly: its first step runs inside `create_task`, up to its first real wait. 3.11 has
no such option and no library backports it, so `create_eager_task` does it here:

- the task is made first, around the coroutine, so that `asyncio.current_task()` inside
  the first step is that task (`asyncio.timeout`, aiohttp's timers and structlog's context
  rely on it), and the step runs in the task's own context;
- the first step runs at once, with the task made current for its length (the caller's
  task is set aside and put back, as 3.12 does);
- when the task's own first step comes, it hands the loop what the coroutine waits on;
  from then on the task drives the coroutine directly, one forwarded call per step.

A cancel that arrives before the task's own first step cancels what the coroutine waits on
and throws the cancellation in where it waits, as a task's cancel would. On 3.12 and later
this is `asyncio.Task(..., eager_start=True)`.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

T = TypeVar("T")

if sys.version_info < (3, 12):
    from asyncio.tasks import _enter_task, _leave_task


def create_eager_task(
    coro: Coroutine[Any, Any, T],
    *,
    name: str | None = None,
    context: contextvars.Context | None = None,
) -> asyncio.Task[T]:
    """`asyncio.create_task`, with the coroutine's first step run before this returns."""
    loop = asyncio.get_running_loop()
    if sys.version_info >= (3, 12):
        return asyncio.Task(coro, loop=loop, name=name, context=context, eager_start=True)
    ctx = contextvars.copy_context() if context is None else context
    started = _StartedCoroutine(coro)
    task: asyncio.Task[T] = loop.create_task(started, name=name, context=ctx)
    caller = asyncio.current_task(loop)
    if caller is not None:
        _leave_task(loop, caller)
    _enter_task(loop, task)
    try:
        ctx.run(started.first_step)
    finally:
        _leave_task(loop, task)
        if caller is not None:
            _enter_task(loop, caller)
    return task


def finished_eagerly(task: asyncio.Task[Any]) -> bool:
    """True when `task` (from `create_eager_task`) returned in its first step. On 3.11 the
    task itself only reports done after its own first step, one loop lap later."""
    if sys.version_info >= (3, 12):
        return task.done() and not task.cancelled() and task.exception() is None
    started = task.get_coro()
    return isinstance(started, _StartedCoroutine) and started.returned


class _StartedCoroutine(Coroutine[Any, Any, T]):
    """A coroutine whose first step has run already, as the task around it drives it."""

    __slots__ = ("_coro", "_fresh", "_raised", "_returned", "_waits_on")

    def __init__(self, coro: Coroutine[Any, Any, T]) -> None:
        self._coro = coro
        self._fresh = True  # the task has not taken its own first step yet
        self._waits_on: Any = None
        self._returned: tuple[T] | None = None
        self._raised: BaseException | None = None

    @property
    def returned(self) -> bool:
        return self._returned is not None

    def first_step(self) -> None:
        try:
            self._waits_on = self._coro.send(None)
        except StopIteration as stop:
            self._returned = (stop.value,)
        except BaseException as exc:  # handed to the task, which records it
            self._raised = exc

    def send(self, value: Any) -> Any:
        if not self._fresh:
            return self._coro.send(value)
        self._fresh = False
        if self._returned is not None:
            raise StopIteration(self._returned[0])
        if self._raised is not None:
            raised, self._raised = self._raised, None
            raise raised
        return self._waits_on  # the task now waits on it, as it would have

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if self._fresh:
            self._fresh = False
            if self._returned is not None or self._raised is not None:
                # nothing left to cancel: the coroutine ended in its first step
                raise typ if val is None else val
            if isinstance(self._waits_on, asyncio.Future):
                self._waits_on.cancel()  # what a cancel does to what a task waits on
        if val is None:
            return self._coro.throw(typ)
        return self._coro.throw(typ, val, tb)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, T]:
        raise TypeError("a started coroutine is driven by its task, not awaited")
