"""Send a provider request's body in the step that sends its headers, on Python 3.11.

aiohttp writes a request body from a task of its own. On Python 3.12 and later it starts
that task eagerly: its first step runs at once, so a small JSON body leaves together with
the headers. On 3.11 there are no eager tasks, and the first step waits behind everything
already queued on the event loop. In a burst that queue is long: with 50 tasks submitted
together, the median provider request reached the upstream ~23 ms after its `llm.request`
event, one full loop lap late (bench/README.md, run 10).

aiohttp has no option for this, so `install()` gives 3.11 the 3.12 behaviour for that one
coroutine: it swaps the `asyncio` name inside `aiohttp.client_reqrep` for a proxy whose
`create_task` runs `ClientRequest.write_bytes` up to its first wait inline, and lets a
task drive it on from there (a paused transport, a 100-continue). Every other name, and
every other coroutine, goes to asyncio unchanged. On 3.12 and later it does nothing.
"""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import Coroutine
from typing import Any

from aiohttp import client_reqrep

_WRITER = "ClientRequest.write_bytes"


class _AsyncioWithEagerWriter(types.ModuleType):
    """`asyncio` as `aiohttp.client_reqrep` sees it once installed."""

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @staticmethod
    def create_task(coro: Coroutine[Any, Any, Any], **kwargs: Any) -> asyncio.Future[Any]:
        if getattr(coro, "__qualname__", "") != _WRITER:
            return asyncio.create_task(coro, **kwargs)
        try:
            awaited = coro.send(None)
        except StopIteration:
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done  # aiohttp keeps no writer when it is done already
        return asyncio.create_task(_drive_on(coro, awaited), **kwargs)


async def _drive_on(coro: Coroutine[Any, Any, Any], awaited: Any) -> None:
    """Resume `coro`, suspended on `awaited`, as a task's steps would: after what it waits
    for is done (its result or error is read by the coroutine itself), and with the
    cancellation thrown in where it waits."""
    while True:
        try:
            if awaited is None:  # a bare yield (asyncio.sleep(0)): one loop turn
                await asyncio.sleep(0)
            else:
                await asyncio.wait((awaited,))
        except asyncio.CancelledError as exc:
            if awaited is not None:
                awaited.cancel()
            try:
                awaited = coro.throw(exc)
            except StopIteration:
                return
            continue
        try:
            awaited = coro.send(None)
        except StopIteration:
            return


def install() -> None:
    """Make aiohttp's request-body writer eager on Python 3.11 (idempotent)."""
    if sys.version_info >= (3, 12) or isinstance(
        vars(client_reqrep)["asyncio"], _AsyncioWithEagerWriter
    ):
        return
    vars(client_reqrep)["asyncio"] = _AsyncioWithEagerWriter("asyncio")
