"""How long a write's caller waits (app/store/writer.py): an acknowledged write still queued
when `request_timeout_s` is up is taken back (StorageUnavailable, never stored); one in a
transaction already waits for that transaction's outcome; a caller that goes away does not
take its write back.

The store is a real SQLite file behind a gate: each commit waits for the test to open it,
so a transaction can be held in flight for as long as a test needs.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from app.core.eager import create_eager_task
from app.core.errors import StorageUnavailable
from app.store.migrations import upgrade_database
from app.store.rows import WriteOp
from app.store.sqlite_backend import SQLiteWriteBackend
from app.store.writer import StoreWriter
from tests.support.rows import event

BOUND_S = 0.5  # long enough that half of it is never lost to a busy machine


class GatedBackend(SQLiteWriteBackend):
    """SQLite whose commits wait for `gate` (never on the loop's thread)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = asyncio.Event()
        self.in_flight = asyncio.Event()

    def commit_now(self, units: Sequence[Sequence[WriteOp]]) -> list[list[int]] | None:
        return None

    async def commit(self, units: Sequence[Sequence[WriteOp]]) -> list[list[int]]:
        self.in_flight.set()
        await self.gate.wait()
        return await super().commit(units)


@pytest.fixture
async def gated(tmp_path: Path) -> AsyncIterator[tuple[StoreWriter, GatedBackend, Path]]:
    path = tmp_path / "bounds.db"
    await upgrade_database(f"sqlite+aiosqlite:///{path}")
    backend = GatedBackend(path)
    writer = StoreWriter(backend, request_timeout_s=BOUND_S)
    await writer.start()
    yield writer, backend, path
    backend.gate.set()
    await writer.close(5.0)


def stored(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [payload for (payload,) in db.execute("SELECT payload FROM events ORDER BY seq")]


async def test_a_queued_write_is_taken_back_and_one_in_flight_waits_for_its_commit(
    gated: tuple[StoreWriter, GatedBackend, Path],
) -> None:
    writer, backend, path = gated
    first = asyncio.create_task(writer.write(event(n=1), operation="event_posted"))
    await backend.in_flight.wait()  # its transaction has begun, and waits at the gate
    second = asyncio.create_task(writer.write(event(n=2), operation="event_posted"))
    with pytest.raises(StorageUnavailable, match="did not take this write within"):
        async with asyncio.timeout(10 * BOUND_S):
            await second  # still queued when its bound passed
    assert not first.done()  # in a transaction: its outcome is the answer, however late
    backend.gate.set()
    assert await first == [1]
    assert await writer.flush(5.0)
    assert stored(path) == ['{"n":1}']  # the one taken back is never written


async def test_each_write_has_its_own_bound(
    gated: tuple[StoreWriter, GatedBackend, Path],
) -> None:
    """One timer serves every queued write: a write queued later is not taken back at
    an earlier write's bound, and is taken back at its own."""
    writer, backend, _ = gated
    blocker = asyncio.create_task(writer.write(event(n=0), operation="event_posted"))
    await backend.in_flight.wait()
    early = asyncio.create_task(writer.write(event(n=1), operation="event_posted"))
    # the later write is queued half a bound after the first (the scenario needs two
    # bounds apart in time; nothing waits on it to happen)
    loop = asyncio.get_running_loop()
    queued_later = loop.create_future()
    loop.call_later(BOUND_S / 2, queued_later.set_result, None)
    await queued_later
    late = asyncio.create_task(writer.write(event(n=2), operation="event_posted"))
    async with asyncio.timeout(10 * BOUND_S):
        with pytest.raises(StorageUnavailable):
            await early
        assert not late.done()  # half its bound is left
        with pytest.raises(StorageUnavailable):
            await late
    backend.gate.set()
    assert await blocker == [1]


async def test_a_durable_write_is_made_when_its_caller_goes_away(
    gated: tuple[StoreWriter, GatedBackend, Path],
) -> None:
    writer, backend, path = gated
    caller = asyncio.create_task(writer.write_durable(event(kept=True), operation="events"))
    await backend.in_flight.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    backend.gate.set()
    assert await writer.flush(5.0)
    assert stored(path) == ['{"kept":true}']


async def test_an_acknowledged_write_whose_caller_went_away_is_still_made(
    gated: tuple[StoreWriter, GatedBackend, Path],
) -> None:
    """Nobody reads its answer, so its bound takes nothing back: the write is made once
    the store takes it (a submit whose client hung up still runs, as it always did)."""
    writer, backend, path = gated
    blocker = asyncio.create_task(writer.write(event(n=0), operation="event_posted"))
    await backend.in_flight.wait()
    # started eagerly: both queued before the cancel
    gone = create_eager_task(writer.write(event(n=1), operation="event_posted"))
    after = create_eager_task(writer.write(event(n=2), operation="event_posted"))
    gone.cancel()
    with pytest.raises(StorageUnavailable):  # queued after `gone`: its bound is later
        async with asyncio.timeout(10 * BOUND_S):
            await after
    backend.gate.set()
    assert await blocker == [1]
    assert await writer.flush(5.0)
    assert stored(path) == ['{"n":0}', '{"n":1}']
