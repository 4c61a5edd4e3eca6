"""Delivering frozen records to plain hook callables.

Instrumentation (metrics, events, logs) is supplied by the application as callables that take
one frozen record; the resilience layer never imports Prometheus or FastAPI. A hook that
raises is logged and skipped: a broken metric must never fail or alter a provider call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TypeVar

R = TypeVar("R")

Hook = Callable[[R], None]

_log = logging.getLogger("app.resilience")


def emit(hooks: Iterable[Callable[[R], None]], record: R) -> None:
    """Call every hook with `record`; log (do not propagate) a hook's own failure."""
    for hook in hooks:
        try:
            hook(record)
        except Exception:
            _log.exception("resilience hook %r failed on %r", hook, record)
