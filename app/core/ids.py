"""Identifiers the service mints: tasks, agents, request ids."""

from __future__ import annotations

import os
import time


def new_id() -> str:
    """32 lowercase hex digits (a uuid's alphabet and length): the time in milliseconds
    (12 digits), then 80 random bits — a UUIDv7's layout. Ids minted later sort later, so
    the store's indexes on them grow at one end: a commit of many new tasks and their
    events writes a few index pages instead of one random page per id (bench/README.md,
    run 9). Cheap too (a fifth of `uuid.uuid4().hex`'s cost): a few are minted per task."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"
