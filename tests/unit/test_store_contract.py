"""The write-backend contract (app/store/backend.py), run against every backend — SQLite
and PostgreSQL: seqs assigned in the transaction, rising by one, never reused after a
restart, a batch stored whole or not at all, and each typed row landing where the reads
find it (64-bit counters, JSON documents and filters alike on both engines).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import asyncpg
import orjson
import pytest
from sqlalchemy import text

from app.agents.repository import AgentRepository, TaskRepository, UsageRepository
from app.agents.schemas import TaskState
from app.artifacts.repository import ArtifactRepository, artifact_from_row
from app.events.repository import EventRepository
from app.events.schemas import EventFilter
from app.store.backend import RowConflict, StoreFailure, WriteBackend
from app.store.engine import create_engine
from app.store.migrations import upgrade_database
from app.store.pg_backend import PostgresWriteBackend
from app.store.rows import (
    AgentDeleted,
    AgentSessionSaved,
    ArtifactsEvicted,
    EventsPruned,
    NewAgent,
    NewArtifact,
    NewEvent,
    NewTask,
    TaskFinished,
    TaskStarted,
    UsageAdded,
)
from app.store.sqlite_backend import SQLiteWriteBackend
from app.store.writer import StoreWriter
from tests.support.rows import event

Opened = tuple[WriteBackend, Callable[[], Awaitable[WriteBackend]], str]
FRESH: dict[str, Callable[[], WriteBackend]] = {}  # an unopened backend on the test's database


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opened]:
    """(an opened backend, a way to open another one on the same database, the URL)."""
    if request.param == "sqlite":
        path = tmp_path / "contract.db"
        url = f"sqlite+aiosqlite:///{path}"

        def make() -> WriteBackend:
            return SQLiteWriteBackend(path, busy_timeout_ms=50)

    else:
        url = request.getfixturevalue("pg_url")

        def make() -> WriteBackend:
            return PostgresWriteBackend(url, lock_timeout_ms=50)

    await upgrade_database(url)
    opened: list[WriteBackend] = []

    async def reopen() -> WriteBackend:
        backend = make()
        await backend.open()
        opened.append(backend)
        return backend

    FRESH[url] = make
    first = await reopen()
    yield first, reopen, url
    for backend in opened:
        await backend.close()


def agent(name: str = "a", id_: str = "ag1") -> NewAgent:
    return NewAgent(id_, name, "chat", "openai", "m", "", [], False, None, None, "idle", 1.0)


async def test_seqs_rise_by_one_per_event_across_units(store: Opened) -> None:
    backend, _, _ = store
    assert await backend.commit([[event(), event()], [agent()], [event()]]) == [[1, 2], [], [3]]
    assert await backend.commit([[event()]]) == [[4]]


async def test_a_batch_is_stored_whole_or_not_at_all(store: Opened) -> None:
    backend, _, url = store
    await backend.commit([[agent("dup", "one")]])
    with pytest.raises(RowConflict):
        await backend.commit([[event()], [agent("dup", "two"), event()]])
    assert await backend.commit([[event()]]) == [[1]]  # nobody saw the rolled-back seqs
    engine = create_engine(url)
    try:
        stored = await EventRepository(engine).read(after_seq=0)
        assert [e.seq for e in stored] == [1]
        assert [a.id for a in await AgentRepository(engine).live()] == ["one"]
    finally:
        await engine.dispose()


async def test_numbering_goes_on_after_a_restart(store: Opened) -> None:
    backend, reopen, _ = store
    await backend.commit([[event(), event(), event()]])
    await backend.close()
    again = await reopen()
    assert await again.commit([[event()]]) == [[4]]


async def test_rows_land_where_the_reads_find_them(store: Opened) -> None:
    backend, _, url = store
    await backend.commit([[agent()], [NewTask("t1", "ag1", "a", "hi", 30.0, 2.0, 1)]])
    await backend.commit([[TaskStarted("t1", 3.0)]])
    done = TaskFinished(
        "t1",
        "succeeded",
        4.0,
        result="ok",
        input_tokens=5,
        output_tokens=7,
        cost_usd=0.5,
        attempts=1,
        files_changed=["f"],
        agent_id="ag1",
        agent_state="idle",
    )
    usage = UsageAdded("openai", "m", 1, 5, 7, 0, 0.5)
    await backend.commit([[done, usage], [usage]])
    engine = create_engine(url)
    try:
        task = await TaskRepository(engine).get("t1")
        assert task is not None and task.state == TaskState.SUCCEEDED
        assert (task.result, task.started_at, task.finished_at) == ("ok", 3.0, 4.0)
        assert (task.usage.input_tokens, task.files_changed) == (5, ["f"])
        (stored_agent,) = await AgentRepository(engine).live()
        assert (stored_agent.tasks_total, stored_agent.usage.output_tokens) == (1, 7)
        (totals,) = await UsageRepository(engine).totals()
        assert (totals["calls"], totals["input_tokens"], totals["cost_usd"]) == (2, 10, 1.0)
        await backend.commit([[AgentDeleted("ag1", 5.0)]])
        assert await AgentRepository(engine).live() == []
    finally:
        await engine.dispose()


async def test_pruning_keeps_the_newest_events(store: Opened) -> None:
    backend, _, url = store
    await backend.commit([[event() for _ in range(10)]])
    await backend.commit([[EventsPruned(keep_last=3)]])
    engine = create_engine(url)
    try:
        assert [e.seq for e in await EventRepository(engine).read(after_seq=0)] == [8, 9, 10]
    finally:
        await engine.dispose()
    assert await backend.commit([[event()]]) == [[11]]


def artifact(id_: str, created_at: float, task_id: str = "t1") -> NewArtifact:
    return NewArtifact(
        id_,
        task_id,
        "scout",
        "screenshot",
        int(created_at),
        "click_at",
        "http://site/ü",
        None,
        None,
        "image/png",
        1000,
        4,
        3,
        "ab" * 32,
        created_at,
    )


async def test_artifacts_are_stored_then_evicted_in_one_unit_with_events(store: Opened) -> None:
    """A new artifact lands where the reads find it, in the same transaction as the events
    queued with it; an eviction marks rows once (the first time stays), and a duplicate id
    is refused with nothing of its unit stored."""
    backend, _, url = store
    final = replace(
        artifact("f1", 3.0),
        kind="final",
        action=None,
        url="http://site/end",
        title="End",
        page_text="bye ✓",
        bytes=123_456,
        width=800,
    )
    seqs = await backend.commit(
        [[artifact("a1", 1.0), event("browser.action", screenshot="a1")], [artifact("a2", 2.0)]]
    )
    assert seqs == [[1], []]
    await backend.commit([[final]])
    with pytest.raises(RowConflict):
        await backend.commit([[artifact("a2", 4.0, "t2"), event("lost")]])
    await backend.commit([[ArtifactsEvicted(("a1",), 5.0)], [ArtifactsEvicted(("a1", "a2"), 6.0)]])
    engine = create_engine(url)
    try:
        repo = ArtifactRepository(engine)
        listed = await repo.for_task("t1")
        assert [(a.id, a.evicted) for a in listed] == [("a1", True), ("a2", True), ("f1", False)]
        assert (listed[0].url, listed[0].step, listed[0].action) == ("http://site/ü", 1, "click_at")
        got = await repo.get("f1")
        assert got is not None
        assert got == artifact_from_row(final.as_stored())  # every column read back as written
        assert await repo.for_task("t2") == []
        assert await repo.stored_bytes() == 123_456
        assert [e.type for e in await EventRepository(engine).read(after_seq=0)] == [
            "browser.action"
        ]
        async with engine.connect() as conn:
            times = await conn.execute(text("SELECT id, evicted_at FROM artifacts ORDER BY id"))
            assert [tuple(r) for r in times] == [("a1", 5.0), ("a2", 6.0), ("f1", None)]
    finally:
        await engine.dispose()


class Blocker:
    """Another connection holding the database's write lock (SQLite's, or PostgreSQL
    table locks on everything the writer touches), released by `release()`."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._sqlite: sqlite3.Connection | None = None
        self._pg: asyncpg.Connection | None = None

    async def hold(self) -> None:
        if self._url.startswith("sqlite"):
            self._sqlite = sqlite3.connect(
                self._url.removeprefix("sqlite+aiosqlite:///"), isolation_level=None
            )
            self._sqlite.execute("BEGIN IMMEDIATE")
            return
        self._pg = await asyncpg.connect(self._url.replace("postgresql+asyncpg", "postgresql"))
        await self._pg.execute(
            "BEGIN; LOCK TABLE events, agents, tasks, usage_totals, artifacts, alembic_version "
            "IN ACCESS EXCLUSIVE MODE"
        )

    async def release(self) -> None:
        if self._sqlite is not None:
            self._sqlite.execute("ROLLBACK")
            self._sqlite.close()
        if self._pg is not None:
            await self._pg.execute("ROLLBACK")
            await self._pg.close()


async def test_commit_now_commits_on_the_spot_or_does_nothing(store: Opened) -> None:
    """SQLite commits in the call (the writer's early commits, app/store/writer.py);
    PostgreSQL always needs a round trip, so it declines and stores nothing."""
    backend, _, _ = store
    done = backend.commit_now([[event(n=1)], [event(n=2)]])
    if isinstance(backend, SQLiteWriteBackend):
        assert done == [[1], [2]]
        assert await backend.commit([[event(n=3)]]) == [[3]]
    else:
        assert done is None
        assert await backend.commit([[event(n=3)]]) == [[1]]


async def test_a_locked_store_fails_typed_and_stores_nothing(store: Opened) -> None:
    backend, _, url = store
    blocker = Blocker(url)
    await blocker.hold()
    try:
        with pytest.raises(StoreFailure) as failure:
            await backend.commit([[event()]])
        assert failure.value.reason == "locked"
        with pytest.raises(StoreFailure):
            await backend.probe()
    finally:
        await blocker.release()
    await backend.probe()
    assert await backend.commit([[event()]]) == [[1]]


async def test_writer_groups_a_loop_turn_and_publishes_after_commit(store: Opened) -> None:
    """Units queued in one loop turn share one transaction; subscribers see them only
    once it committed; a write refused while the store is locked is never made later,
    a kept one is."""
    _, _, url = store
    backend = FRESH[url]()
    commits: list[int] = []
    published: list[int] = []
    real_commit = backend.commit

    async def counting(units):  # type: ignore[no-untyped-def]
        result = await real_commit(units)
        commits.append(len(units))
        return result

    backend.commit = counting  # type: ignore[method-assign]
    writer = StoreWriter(backend, request_timeout_s=5.0, retry_waits_s=(0.01,))
    writer.set_publisher(lambda events: published.extend(seq for seq, _ in events))
    await writer.start()
    for i in range(5):
        writer.write_later(event(i=i), operation="events")
    await writer.write(event(i=5), operation="event_posted")
    assert commits[0] == 6 and published == [1, 2, 3, 4, 5, 6]

    blocker = Blocker(url)
    await blocker.hold()
    from app.core.errors import StorageUnavailable

    with pytest.raises(StorageUnavailable):
        await writer.write(event(refused=True), operation="event_posted")
    assert not writer.health().available and writer.health().reason == "locked"
    writer.write_later(event(kept=True), operation="events")
    with pytest.raises(StorageUnavailable):  # refused at once while unavailable
        await writer.write(event(refused=True), operation="event_posted")
    await blocker.release()
    assert await writer.flush(10.0, while_unavailable=True)
    assert writer.health().available
    await writer.close(1.0)
    engine = create_engine(url)
    try:
        payloads = [e.payload for e in await EventRepository(engine).read(after_seq=6)]
    finally:
        await engine.dispose()
    assert payloads == [{"kept": True}]
    assert published[-1] == 7


async def test_agent_options_and_session_are_stored(store: Opened) -> None:
    backend, _, url = store
    cc = NewAgent(
        "cc1",
        "cc",
        "claude_code",
        "anthropic",
        "m",
        "",
        [],
        False,
        None,
        {"max_turns": 7},
        "idle",
        1.0,
    )
    await backend.commit([[cc], [NewTask("t1", "cc1", "cc", "hi", 30.0, 2.0, 1, True)]])
    await backend.commit([[AgentSessionSaved("cc1", "sess-1")]])
    engine = create_engine(url)
    try:
        (stored,) = await AgentRepository(engine).live()
        assert (stored.max_turns, stored.session_id) == (7, "sess-1")
        task = await TaskRepository(engine).get("t1")
        assert task is not None and task.new_session
    finally:
        await engine.dispose()


BIG = 2**40  # past 32-bit integers


async def test_large_counters_json_documents_and_filters_read_back_alike(
    store: Opened,
) -> None:
    """64-bit token counts, nested unicode JSON and every event filter (agent, task,
    `prefix*` with `_` taken literally) give the same answers on each engine."""
    backend, _, url = store
    nested = {"list": [1, "two", None], "ü": "✓", "deep": {"x": 1.5}}
    await backend.commit([[agent()], [NewTask("t1", "ag1", "a", "hi", 30.0, 2.0, 1)]])
    await backend.commit(
        [
            [
                NewEvent(
                    1.0, "s", "task.queued", "a", "t1", None, nested, orjson.dumps(nested).decode()
                ),
                event("task_x"),
                event("task.running"),
            ]
        ]
    )
    done = TaskFinished(
        "t1",
        "failed",
        4.0,
        error={"type": "server_error", "message": "✗", "details": nested},
        input_tokens=BIG,
        agent_id="ag1",
        agent_state="failed",
    )
    await backend.commit([[done, UsageAdded("openai", "m", 1, BIG, 1, 0, 0.25)]])
    engine = create_engine(url)
    try:
        task = await TaskRepository(engine).get("t1")
        assert task is not None and task.error is not None
        assert task.error.model_dump(exclude_none=True)["details"] == nested
        assert task.usage.input_tokens == BIG
        (stored_agent,) = await AgentRepository(engine).live()
        assert stored_agent.usage.input_tokens == BIG
        (totals,) = await UsageRepository(engine).totals()
        assert totals["input_tokens"] == BIG
        events = EventRepository(engine)
        (first,) = await events.read(after_seq=0, where=EventFilter(task_id="t1"))
        assert first.payload == nested and orjson.loads(first.frame)["payload"] == nested
        prefixed = await events.read(after_seq=0, where=EventFilter(type="task.*"))
        assert [e.type for e in prefixed] == ["task.queued", "task.running"]
        assert [e.seq for e in await events.read(after_seq=0, where=EventFilter(agent="a"))] == [1]
    finally:
        await engine.dispose()


async def test_settled_waits_for_the_writes_accepted_before_it(store: Opened) -> None:
    """`settled()` returns at once with nothing to write; otherwise only after the commit in
    flight and the one taking what was queued meanwhile, their callbacks run."""
    _, _, url = store
    backend = FRESH[url]()
    gate, entered = asyncio.Event(), asyncio.Event()
    real_commit = backend.commit

    async def gated(units):  # type: ignore[no-untyped-def]
        entered.set()
        await gate.wait()
        return await real_commit(units)

    backend.commit = gated  # type: ignore[method-assign]
    writer = StoreWriter(backend, request_timeout_s=5.0, retry_waits_s=(0.01,))
    await writer.start()
    await writer.settled()  # idle: nothing to wait for
    committed: list[str] = []
    writer.write_later(event(), operation="events", on_commit=lambda _: committed.append("a"))
    await entered.wait()  # the writer took it: in flight, held at the gate
    writer.write_later(event(), operation="events", on_commit=lambda _: committed.append("b"))
    reader = asyncio.create_task(writer.settled())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not reader.done() and committed == []
    gate.set()
    await reader
    assert committed == ["a", "b"]
    await writer.close(1.0)
