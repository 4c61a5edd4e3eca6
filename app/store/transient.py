"""Retrying a store write through a transient failure.

A locked SQLite file (another process writing past busy_timeout) or a dropped database
connection should not cost a task its recorded outcome. A transaction that failed was
rolled back, so running the same write again is safe. Three fixed waits need no retry
library; provider calls have their own policy in `app/resilience`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import structlog
from sqlalchemy.exc import OperationalError

T = TypeVar("T")

STORE_RETRY_WAITS_S: tuple[float, ...] = (0.2, 1.0, 3.0)

log = structlog.get_logger(__name__)


async def retry_store_write(
    write: Callable[[], Awaitable[T]],
    *,
    what: str,
    waits_s: Sequence[float] | None = None,
    on_retry: Callable[[], None] | None = None,
) -> T:
    """`await write()`, again after each wait while it fails with an OperationalError;
    `on_retry` is called before each wait (a metric)."""
    waits = STORE_RETRY_WAITS_S if waits_s is None else waits_s
    for attempt, wait in enumerate([*waits, None], start=1):
        try:
            return await write()
        except OperationalError as exc:
            if wait is None:
                raise
            log.warning(
                "store_write_retry", what=what, attempt=attempt, wait_s=wait, error=str(exc.orig)
            )
            if on_retry is not None:
                on_retry()
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")  # the loop returns or raises
