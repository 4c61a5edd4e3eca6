"""QueueDepth (replicas' `bigthree_tasks_queued`): counted at start, then only after a
task event that may change the queue, at most once per interval; a failed count is retried."""

from __future__ import annotations

import pytest

from app.agents.queue_depth import QueueDepth
from app.core.metrics import Metrics


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Counts:
    """The database's answer, and how many times it was asked."""

    def __init__(self) -> None:
        self.queued = 0
        self.calls = 0
        self.fail = False

    async def __call__(self) -> int:
        self.calls += 1
        if self.fail:
            raise ConnectionError("store away")
        return self.queued


def setup() -> tuple[QueueDepth, Metrics, Counts, Clock]:
    metrics, counts, clock = Metrics(), Counts(), Clock()
    depth = QueueDepth(counts, metrics.tasks_queued, every_s=2.0, clock=clock)
    return depth, metrics, counts, clock


def gauge(metrics: Metrics) -> float:
    return float(metrics.tasks_queued._value.get())


async def test_counts_at_start_then_only_after_queue_events() -> None:
    depth, metrics, counts, clock = setup()
    counts.queued = 3
    await depth.refresh()
    assert (gauge(metrics), counts.calls) == (3, 1)
    clock.now += 10
    depth.saw("task.progress")  # not a queue change: no query
    await depth.refresh()
    assert counts.calls == 1
    for event in ("task.queued", "task.running", "task.cancelled"):
        depth.saw(event)
        counts.queued += 1
        clock.now += 2
        await depth.refresh()
        assert gauge(metrics) == counts.queued
    assert counts.calls == 4


async def test_at_most_one_count_per_interval_and_none_missed() -> None:
    depth, metrics, counts, clock = setup()
    await depth.refresh()
    depth.saw("task.queued")
    counts.queued = 5
    clock.now += 1.9
    await depth.refresh()
    assert (gauge(metrics), counts.calls) == (0, 1)  # too soon
    clock.now += 0.1
    await depth.refresh()
    assert (gauge(metrics), counts.calls) == (5, 2)  # the change was kept for later


async def test_a_failed_count_is_tried_again() -> None:
    depth, metrics, counts, clock = setup()
    counts.fail, counts.queued = True, 2
    with pytest.raises(ConnectionError):
        await depth.refresh()
    counts.fail = False
    clock.now += 2
    await depth.refresh()
    assert (gauge(metrics), counts.calls) == (2, 2)
