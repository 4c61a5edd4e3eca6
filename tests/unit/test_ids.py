"""Minted ids: a uuid's alphabet and length, sorting by the time they were made."""

from __future__ import annotations

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
