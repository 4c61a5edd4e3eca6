"""Urgent writes (app/store/writer.py): once URGENT_BATCH of them are queued, the writer
commits what is queued in the step of the write that made it so, and runs the callbacks
there; the events and the acknowledgements still wait for the loop's turn. Everything else
keeps one commit per loop turn. Soon writes, the other way round: made on the loop's next
turn, out of the early commits, yet ahead of any later write that is not urgent.

Each test queues its writes from tasks created together, then schedules a `check` behind
them: it runs after every write's first step and before the writer's own turn (the writer
is woken by the first write, so its turn is queued behind the check).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.store.migrations import upgrade_database
from app.store.rows import NewEvent
from app.store.sqlite_backend import SQLiteWriteBackend
from app.store.writer import URGENT_BATCH, StoreWriter
from tests.support.rows import event


@dataclass
class Seen:
    """What the writer had done by the time `check` ran, and by the end."""

    callbacks: list[int] = field(default_factory=list)  # seqs, as on_commit saw them
    published: list[int] = field(default_factory=list)
    at_check: tuple[int, int, int] | None = None  # (callbacks, published, writes returned)


@pytest.fixture
async def writer(tmp_path: Path) -> AsyncIterator[tuple[StoreWriter, Seen, Path]]:
    path = tmp_path / "urgent.db"
    await upgrade_database(f"sqlite+aiosqlite:///{path}")
    seen = Seen()
    writer = StoreWriter(SQLiteWriteBackend(path), request_timeout_s=10.0)
    writer.set_publisher(lambda events: seen.published.extend(seq for seq, _ in events))
    await writer.start()
    yield writer, seen, path
    await writer.close(5.0)


async def burst(
    writer: StoreWriter,
    seen: Seen,
    count: int,
    *,
    urgent: bool,
    at_check: Callable[[], None] = lambda: None,
) -> list[list[int]]:
    """`count` acknowledged writes queued in one loop pass, then `check`."""

    def on_commit(seqs: list[int]) -> None:
        seen.callbacks.extend(seqs)

    writes = [
        asyncio.create_task(
            writer.write(event(n=n), operation="task_submitted", on_commit=on_commit, urgent=urgent)
        )
        for n in range(count)
    ]

    def check() -> None:
        returned = sum(w.done() for w in writes)
        seen.at_check = (len(seen.callbacks), len(seen.published), returned)
        at_check()

    asyncio.get_running_loop().call_soon(check)
    async with asyncio.timeout(10):
        return await asyncio.gather(*writes)


async def test_urgent_writes_commit_in_the_callers_step_and_announce_at_the_turns_end(
    writer: tuple[StoreWriter, Seen, Path],
) -> None:
    w, seen, _ = writer
    seqs = await burst(w, seen, URGENT_BATCH, urgent=True)
    # committed, callbacks run, nothing published and nobody answered yet
    assert seen.at_check == (URGENT_BATCH, 0, 0)
    assert seqs == [[n] for n in range(1, URGENT_BATCH + 1)]
    assert seen.published == seen.callbacks == list(range(1, URGENT_BATCH + 1))


@pytest.mark.parametrize(("count", "urgent"), [(URGENT_BATCH - 1, True), (8, False)])
async def test_other_writes_wait_for_the_turns_end(
    writer: tuple[StoreWriter, Seen, Path], count: int, urgent: bool
) -> None:
    w, seen, _ = writer
    await burst(w, seen, count, urgent=urgent)
    assert seen.at_check == (0, 0, 0)
    assert seen.published == seen.callbacks == list(range(1, count + 1))


async def test_a_failed_early_commit_leaves_the_batch_to_the_loop(
    writer: tuple[StoreWriter, Seen, Path],
) -> None:
    w, seen, path = writer
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another connection holds the write lock
    try:
        seqs = await burst(w, seen, URGENT_BATCH, urgent=True, at_check=blocker.rollback)
    finally:
        blocker.close()
    assert seen.at_check == (0, 0, 0)  # the early commit found the lock: nothing done
    assert seqs == [[n] for n in range(1, URGENT_BATCH + 1)]
    assert seen.published == list(range(1, URGENT_BATCH + 1))
    assert w.health().available


async def test_a_reader_waiting_for_settled_writes_is_released_by_an_early_commit(
    writer: tuple[StoreWriter, Seen, Path],
) -> None:
    """Nothing is left for the loop to commit after an early commit, so the early commit
    itself must release `settled()`."""
    w, seen, _ = writer
    first = [
        asyncio.create_task(w.write(event(n=n), operation="task_submitted", urgent=True))
        for n in range(URGENT_BATCH - 1)
    ]
    reader = asyncio.create_task(w.settled())  # finds them queued
    last = asyncio.create_task(w.write(event(n=99), operation="task_submitted", urgent=True))
    async with asyncio.timeout(10):
        await reader
        await asyncio.gather(*first, last)
    assert seen.published == list(range(1, URGENT_BATCH + 1))


# --- soon writes: made with the loop's next turn, in their place ---------------------------


def soon(w: StoreWriter, seen: Seen, n: int) -> None:
    w.write_soon(
        lambda: (event(n=n),),
        operation="task_running",
        on_commit=lambda seqs: seen.callbacks.extend(seqs),
    )


def stored_ns(path: Path) -> list[int]:
    """The `n` of every stored event, in seq order."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT payload FROM events ORDER BY seq").fetchall()
    return [int(payload.split(":")[1].rstrip("}")) for (payload,) in rows]


async def test_soon_writes_stay_out_of_an_early_commit_made_in_the_same_step(
    writer: tuple[StoreWriter, Seen, Path],
) -> None:
    """The burst's early commit takes the urgent writes only; the soon write asked for
    before them, in the same loop pass (as a task's start is), is made on the next turn
    and committed after them."""
    w, seen, path = writer

    async def starts_a_task() -> None:
        soon(w, seen, 100)

    start = asyncio.create_task(starts_a_task())  # runs first in the pass of the burst
    await burst(w, seen, URGENT_BATCH, urgent=True)
    await start
    assert seen.at_check is not None and seen.at_check[0] == URGENT_BATCH  # early commit ran
    await w.flush(5.0)
    assert stored_ns(path) == [*range(URGENT_BATCH), 100]


async def test_a_later_write_that_is_not_urgent_makes_the_soon_writes_first(
    writer: tuple[StoreWriter, Seen, Path],
) -> None:
    w, seen, path = writer
    soon(w, seen, 1)
    soon(w, seen, 2)
    w.write_later(event(n=3), operation="events")  # in the same step: no turn in between
    await w.flush(5.0)
    assert stored_ns(path) == [1, 2, 3]
    assert seen.callbacks == [1, 2]


async def test_soon_writes_are_made_on_the_next_turn(
    writer: tuple[StoreWriter, Seen, Path],
) -> None:
    w, seen, path = writer
    soon(w, seen, 7)
    await asyncio.sleep(0)  # the next turn makes it: queued now, so `settled` waits for it
    await w.settled()
    assert stored_ns(path) == [7]
    assert seen.published == seen.callbacks == [1]


async def test_flush_makes_the_soon_writes_and_waits_for_them(
    writer: tuple[StoreWriter, Seen, Path],
) -> None:
    w, seen, path = writer
    soon(w, seen, 8)
    assert await w.flush(5.0)  # in the same step: nothing made yet but by flush itself
    assert stored_ns(path) == [8]


async def test_a_soon_write_that_cannot_be_built_is_logged_and_the_others_kept(
    writer: tuple[StoreWriter, Seen, Path],
) -> None:
    w, seen, path = writer

    def broken() -> tuple[NewEvent, ...]:
        raise ValueError("a bug in the caller")

    soon(w, seen, 1)
    w.write_soon(broken, operation="events")
    soon(w, seen, 2)
    assert await w.flush(5.0)
    assert stored_ns(path) == [1, 2]
