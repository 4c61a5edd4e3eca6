"""Minted ids: a uuid's alphabet and length, sorting by the time they were made."""

from __future__ import annotations

import os
import re

import pytest

from app.core import ids


def test_ids_are_32_hex_digits_and_unique() -> None:
    minted = {ids.new_id() for _ in range(1000)}
    assert len(minted) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in minted)


def test_ids_minted_later_sort_later(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(1_700_000_000_000_000_000, 1_700_000_100_000_000_000, 1_000_000))
    monkeypatch.setattr(ids.time, "time_ns", lambda: next(clock))
    minted = [ids.new_id() for _ in range(100)]  # one millisecond apart
    assert minted == sorted(minted)


def test_request_ids_are_unique_here_and_in_a_forked_child() -> None:
    minted = [ids.new_request_id() for _ in range(1000)]
    assert len(set(minted)) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{32,}", i) for i in minted)
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the child: its next id, then out without pytest's teardown
        os.write(write_end, ids.new_request_id().encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    with os.fdopen(read_end) as pipe:
        from_child = pipe.read()
    # the same count would follow in the child: only its own prefix keeps the ids apart
    assert from_child[:16] != minted[0][:16]
    assert from_child not in minted
