"""Where the SQLite backend commits (app/store/sqlite_backend.py): with synchronous=NORMAL on
the event loop's thread, finished before the call returns; an fsync per commit (FULL), bulk
deletes and a write lock held by another connection go to the writer thread, so the loop
never waits on them.

`create_eager_task` runs the commit's first step inside the call: a commit that finished in
it never left the loop's thread; one handed to the thread is still pending then.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.core.eager import create_eager_task, finished_eagerly
from app.store.migrations import upgrade_database
from app.store.rows import EventsPruned
from app.store.sqlite_backend import SQLiteWriteBackend
from tests.support.rows import event


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Path]:
    path = tmp_path / "place.db"
    await upgrade_database(f"sqlite+aiosqlite:///{path}")
    yield path


async def opened(path: Path, synchronous: str = "NORMAL") -> SQLiteWriteBackend:
    backend = SQLiteWriteBackend(path, busy_timeout_ms=5000, synchronous=synchronous)
    await backend.open()
    return backend


def stored_seqs(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT seq FROM events ORDER BY seq")]


async def test_a_normal_commit_finishes_on_the_loops_thread(db: Path) -> None:
    backend = await opened(db)
    try:
        commit = create_eager_task(backend.commit([[event(n=1)], [event(n=2)]]))
        assert finished_eagerly(commit)
        assert await commit == [[1], [2]]
        assert stored_seqs(db) == [1, 2]
    finally:
        await backend.close()


async def test_an_fsync_per_commit_and_bulk_deletes_go_to_the_writer_thread(db: Path) -> None:
    full = await opened(db, "FULL")
    try:
        commit = create_eager_task(full.commit([[event(n=1)]]))
        assert not finished_eagerly(commit)
        assert await commit == [[1]]
    finally:
        await full.close()
    normal = await opened(db)
    try:
        prune = create_eager_task(normal.commit([[event(n=2)], [EventsPruned(keep_last=1)]]))
        assert not finished_eagerly(prune)
        assert await prune == [[2], []]
        assert stored_seqs(db) == [2]
    finally:
        await normal.close()


async def test_a_write_lock_held_elsewhere_is_waited_out_off_the_loop(db: Path) -> None:
    backend = await opened(db)
    # the loop's commits never busy-wait (a wait there would stall every request): SQLite's
    # busy timeout is 0 on that connection, and the thread sets it for its own attempts
    assert backend._conn is not None
    assert backend._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 0
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    try:
        commit = create_eager_task(backend.commit([[event(n=1)]]))
        assert not finished_eagerly(commit)  # not stored, not failed: waiting on the thread
        assert stored_seqs(db) == []
        holder.execute("ROLLBACK")
        assert await commit == [[1]]
        assert stored_seqs(db) == [1]
        again = create_eager_task(backend.commit([[event(n=2)]]))
        assert finished_eagerly(again)  # the lock gone, commits are back on the loop's thread
        assert await again == [[2]]
    finally:
        holder.close()
        await backend.close()
