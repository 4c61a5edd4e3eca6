"""settle_after_startup: what exists at start leaves the collector's passes, cycles made
later are still collected."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from app.core.gc_tuning import GEN0_THRESHOLD, settle_after_startup


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


class _Node:
    def __init__(self) -> None:
        self.me = self


@pytest.mark.usefixtures("restored_gc")
def test_settle_freezes_startup_objects_and_raises_the_young_threshold() -> None:
    started = [_Node() for _ in range(10)]
    settle_after_startup()
    assert gc.get_freeze_count() >= len(started)
    assert gc.get_threshold()[0] == GEN0_THRESHOLD

    garbage = _Node()
    del garbage
    assert gc.collect() >= 1  # a cycle made after start-up is still collected
