"""`Teardown`: close what the lifespan opened, each resource whatever happened to the others.

A plain `finally:` with one await per resource stops at the first that raises (a failing
event flush once skipped closing the providers and the database). `AsyncExitStack` runs
every callback too, but re-raises their errors at the end; a shutdown should instead log
each failure by name and carry on, which is all this class adds.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)

CloseStep = Callable[[], Awaitable[object] | object]


class Teardown:
    def __init__(self) -> None:
        self._steps: list[tuple[str, CloseStep]] = []

    def add(self, name: str, close: CloseStep) -> None:
        """Run `close` at teardown, before every step added earlier."""
        self._steps.append((name, close))

    async def run(self) -> list[str]:
        """Run every step, newest first; return the names of those that failed."""
        failed: list[str] = []
        while self._steps:
            name, close = self._steps.pop()
            try:
                result = close()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("teardown_step_failed", step=name)
                failed.append(name)
        return failed
