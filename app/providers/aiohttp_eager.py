"""Send a provider request's body in the step that sends its headers, on Python 3.11.

aiohttp writes a request body from a task of its own. On Python 3.12 and later it starts
that task eagerly: its first step runs at once, so a small JSON body leaves together with
the headers. On 3.11 there are no eager tasks, and the first step waits behind everything
already queued on the event loop. In a burst that queue is long: with 50 tasks submitted
together, the median provider request reached the upstream ~23 ms after its `llm.request`
event, one full loop lap late (bench/README.md, run 10).

aiohttp has no option for this, so `install()` gives 3.11 the 3.12 behaviour for that one
coroutine: it swaps the `asyncio` name inside `aiohttp.client_reqrep` for a proxy whose
`create_task` starts `ClientRequest.write_bytes` eagerly (`app/core/eager.py`), and hands
aiohttp a finished future when the body was written whole in that first step, as a 3.12
eager task would be done by then. Every other name, and every other coroutine, goes to
asyncio unchanged. On 3.12 and later it does nothing.
"""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import Coroutine
from typing import Any

from aiohttp import client_reqrep

from app.core.eager import create_eager_task, finished_eagerly

_WRITER = "ClientRequest.write_bytes"


class _AsyncioWithEagerWriter(types.ModuleType):
    """`asyncio` as `aiohttp.client_reqrep` sees it once installed."""

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @staticmethod
    def create_task(coro: Coroutine[Any, Any, Any], **kwargs: Any) -> asyncio.Future[Any]:
        if getattr(coro, "__qualname__", "") != _WRITER:
            return asyncio.create_task(coro, **kwargs)
        task = create_eager_task(coro, **kwargs)
        if not finished_eagerly(task):
            return task
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done  # aiohttp keeps no writer when it is done already


def install() -> None:
    """Make aiohttp's request-body writer eager on Python 3.11 (idempotent)."""
    if sys.version_info >= (3, 12) or isinstance(
        vars(client_reqrep)["asyncio"], _AsyncioWithEagerWriter
    ):
        return
    vars(client_reqrep)["asyncio"] = _AsyncioWithEagerWriter("asyncio")
