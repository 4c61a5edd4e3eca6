"""Deadlines and per-provider timeouts as value objects.

A `Deadline` is an absolute point on a monotonic clock. The task runner sets one for the
whole task (`current_deadline`), and every provider call underneath reads it, so a retry never
starts when the time left cannot hold it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Deadline:
    at: float
    clock: Clock = time.monotonic

    @classmethod
    def after(cls, seconds: float, clock: Clock = time.monotonic) -> Deadline:
        return cls(clock() + seconds, clock)

    def remaining(self) -> float:
        return max(0.0, self.at - self.clock())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def earliest(self, other: Deadline | None) -> Deadline:
        return self if other is None or self.at <= other.at else other


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Transport timeouts for one provider, in seconds."""

    connect: float = 5.0
    read: float = 120.0
    write: float = 30.0
    pool: float = 10.0


_current_deadline: ContextVar[Deadline | None] = ContextVar("bigthree_deadline", default=None)


def current_deadline() -> Deadline | None:
    return _current_deadline.get()


@contextlib.contextmanager
def deadline_scope(deadline: Deadline) -> Iterator[Deadline]:
    """Make `deadline` (or a tighter one already in force) the current deadline."""
    effective = deadline.earliest(_current_deadline.get())
    token = _current_deadline.set(effective)
    try:
        yield effective
    finally:
        _current_deadline.reset(token)
