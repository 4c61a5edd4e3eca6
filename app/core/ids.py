"""Identifiers the service mints: tasks, agents, request ids."""

from __future__ import annotations

import os


def new_id() -> str:
    """128 random bits as 32 lowercase hex digits (a uuid4's alphabet and length, at a
    fifth of `uuid.uuid4().hex`'s cost: a few are minted for every task)."""
    return os.urandom(16).hex()
