"""Identifiers the service mints: tasks, agents, request ids."""

from __future__ import annotations

import itertools
import os
import time


def new_id() -> str:
    """32 lowercase hex digits (a uuid's alphabet and length): the time in milliseconds
    (12 digits), then 80 random bits — a UUIDv7's layout. Ids minted later sort later, so
    the store's indexes on them grow at one end: a commit of many new tasks and their
    events writes a few index pages instead of one random page per id (bench/README.md,
    run 9). Cheap too (a fifth of `uuid.uuid4().hex`'s cost): a few are minted per task."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


# a request id needs to be unique, not to sort or to be unguessable: this process's random
# prefix and a count, a third of `new_id`'s cost on every request
_REQUEST_PREFIX = os.urandom(8).hex()
_REQUESTS = itertools.count()


def _new_prefix() -> None:
    """A forked child counts under its own prefix."""
    global _REQUEST_PREFIX
    _REQUEST_PREFIX = os.urandom(8).hex()


os.register_at_fork(after_in_child=_new_prefix)


def new_request_id() -> str:
    """32 or more lowercase hex digits, unique across processes and restarts (random 64-bit
    prefix) and within this one (a count)."""
    return f"{_REQUEST_PREFIX}{next(_REQUESTS):016x}"
