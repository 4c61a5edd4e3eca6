"""ArtifactStore on a real SQLite file and a real directory: caps per task and in total,
oldest evicted first, evicted artifacts read as such, the stored-bytes gauge; metadata
written through the store writer, a file whose row is never stored removed, a save carried
to its end when its caller is cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.artifacts.repository import ArtifactRepository
from app.artifacts.service import ArtifactStore, png_size
from app.core.errors import NotFound, StorageUnavailable
from app.core.metrics import Metrics
from app.store.backend import StoreFailure, WriteBackend
from app.store.engine import create_engine
from app.store.migrations import migrate
from app.store.rows import WriteOp
from app.store.sqlite_backend import SQLiteWriteBackend
from app.store.writer import StoreWriter
from tests.unit.test_computer_use_wire import tiny_png

PNG = tiny_png(4, 4)


class Gate:
    """A write backend that fails every commit as `locked` until opened."""

    def __init__(self, inner: WriteBackend) -> None:
        self.inner = inner
        self.passing = asyncio.Event()
        self.refused = asyncio.Event()

    async def open(self) -> int:
        return await self.inner.open()

    async def commit(self, units: Sequence[Sequence[WriteOp]]) -> list[list[int]]:
        if not self.passing.is_set():
            self.refused.set()
            raise StoreFailure("locked", "held by the test")
        return await self.inner.commit(units)

    def commit_now(self, units: Sequence[Sequence[WriteOp]]) -> list[list[int]] | None:
        return None  # every commit goes through the gate

    async def probe(self) -> None:
        if not self.passing.is_set():
            raise StoreFailure("locked", "held by the test")

    async def close(self) -> None:
        await self.inner.close()


async def open_store(
    tmp_path: Path,
    metrics: Metrics,
    *,
    gate: bool = False,
    task_max: int,
    total_max: int,
    per_replica: bool = False,
) -> tuple[ArtifactStore, StoreWriter, AsyncEngine, Gate | None]:
    path = tmp_path / "db.sqlite"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await migrate(engine)
    backend: WriteBackend = SQLiteWriteBackend(path)
    gated = Gate(backend) if gate else None
    writer = StoreWriter(gated or backend, retry_waits_s=(0.01,))
    await writer.start()
    artifacts = ArtifactStore(
        tmp_path / "artifacts",
        ArtifactRepository(engine),
        writer,
        metrics,
        task_max_bytes=task_max,
        total_max_bytes=total_max,
        per_replica=per_replica,
    )
    await artifacts.start()
    return artifacts, writer, engine, gated


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[tuple[ArtifactStore, Metrics, Path]]:
    metrics = Metrics()
    # each task keeps at most 3 images, all tasks together at most 5
    artifacts, writer, engine, _ = await open_store(
        tmp_path, metrics, task_max=3 * len(PNG), total_max=5 * len(PNG)
    )
    try:
        yield artifacts, metrics, tmp_path / "artifacts"
    finally:
        await writer.close(1.0)
        await engine.dispose()


def gauge(metrics: Metrics) -> float:
    return float(metrics.browser_artifact_bytes._value.get())


async def save(store: ArtifactStore, task: str, step: int) -> str:
    artifact = await store.save_png(
        task,
        "scout",
        PNG,
        kind="screenshot",
        step=step,
        url=f"http://site/{step}",
        action="click_at",
    )
    return artifact.id


async def test_per_task_cap_evicts_that_tasks_oldest(
    store: tuple[ArtifactStore, Metrics, Path],
) -> None:
    artifacts, metrics, root = store
    ids = [await save(artifacts, "a" * 32, step) for step in range(1, 6)]
    listed = await artifacts.for_task("a" * 32)
    assert [a.id for a in listed] == ids
    assert [a.evicted for a in listed] == [True, True, False, False, False]
    assert sorted(p.stem for p in (root / ("a" * 32)).iterdir()) == sorted(ids[2:])
    assert gauge(metrics) == 3 * len(PNG)
    with pytest.raises(NotFound) as evicted:
        await artifacts.read("a" * 32, ids[0])
    assert evicted.value.details["reason"] == "evicted"
    artifact, data = await artifacts.read("a" * 32, ids[-1])
    assert data == PNG and (artifact.width, artifact.height) == (4, 4)


async def test_total_cap_evicts_the_oldest_task_first(
    store: tuple[ArtifactStore, Metrics, Path],
) -> None:
    artifacts, metrics, _ = store
    old = [await save(artifacts, "b" * 32, step) for step in range(1, 4)]
    new = [await save(artifacts, "c" * 32, step) for step in range(1, 4)]
    assert [a.evicted for a in await artifacts.for_task("b" * 32)] == [True, False, False]
    assert not any(a.evicted for a in await artifacts.for_task("c" * 32))
    assert gauge(metrics) == 5 * len(PNG)
    final = await artifacts.save_png(
        "c" * 32,
        "scout",
        PNG,
        kind="final",
        step=3,
        url="http://site/end",
        title="End",
        page_text="bye",
    )
    latest = await artifacts.final("c" * 32)
    assert latest is not None and latest.id == final.id and latest.text == "bye"
    # the 4th image of task c is over its own cap: c's oldest goes, and then the total fits
    assert {a.id for a in await artifacts.for_task("c" * 32) if a.evicted} == {new[0]}
    assert {a.id for a in await artifacts.for_task("b" * 32) if a.evicted} == {old[0]}
    assert gauge(metrics) == 5 * len(PNG)


async def test_reading_the_wrong_task_or_a_missing_one(
    store: tuple[ArtifactStore, Metrics, Path],
) -> None:
    artifacts, _, _ = store
    saved = await save(artifacts, "d" * 32, 1)
    with pytest.raises(NotFound):
        await artifacts.read("e" * 32, saved)
    with pytest.raises(NotFound):
        await artifacts.read("d" * 32, "f" * 32)
    assert await artifacts.final("e" * 32) is None


async def test_stored_bytes_survive_a_restart(tmp_path: Path) -> None:
    first, writer, engine, _ = await open_store(
        tmp_path, Metrics(), task_max=10**6, total_max=10**6
    )
    await save(first, "a" * 32, 1)
    await save(first, "a" * 32, 2)
    await writer.close(1.0)
    await engine.dispose()
    metrics = Metrics()
    _, writer, engine, _ = await open_store(tmp_path, metrics, task_max=10**6, total_max=10**6)
    try:
        assert gauge(metrics) == 2 * len(PNG)
    finally:
        await writer.close(1.0)
        await engine.dispose()


async def test_replicas_sharing_rows_and_directory_keep_one_total_cap(tmp_path: Path) -> None:
    """Two stores on one database and one directory (two replicas): the total cap counts
    both replicas' images, whichever saved them; the oldest goes first, from either."""
    metrics = Metrics()
    one, writer, engine, _ = await open_store(
        tmp_path, metrics, task_max=10**6, total_max=3 * len(PNG)
    )
    other_metrics = Metrics()
    other = ArtifactStore(
        tmp_path / "artifacts",
        ArtifactRepository(engine),
        writer,
        other_metrics,
        task_max_bytes=10**6,
        total_max_bytes=3 * len(PNG),
    )
    await other.start()
    try:
        first = await save(one, "a" * 32, 1)
        second = await save(other, "b" * 32, 1)
        await save(one, "a" * 32, 2)
        # each alone has saved at most 2 images; together 4 > 3: the oldest (one's) goes
        await save(other, "b" * 32, 2)
        evicted = [a.id for t in ("a" * 32, "b" * 32) for a in await one.for_task(t) if a.evicted]
        assert evicted == [first]
        assert gauge(other_metrics) == 3 * len(PNG)
        assert len(files(tmp_path / "artifacts")) == 3
        # and the other replica's image is the next to go when the first one saves
        await save(one, "a" * 32, 3)
        listed = await other.for_task("b" * 32)
        assert [a.id for a in listed if a.evicted] == [second]
        assert gauge(metrics) == 3 * len(PNG)
        _, data = await one.read("b" * 32, listed[-1].id)  # saved by the other: shared dir
        assert data == PNG
    finally:
        await writer.close(1.0)
        await engine.dispose()


async def test_a_file_saved_on_another_replica_reads_as_not_on_this_replica(
    tmp_path: Path,
) -> None:
    """Per-replica directories: the row is shared, the file is not. The store that lacks it
    answers not_on_this_replica, naming the setting; one directory answers `missing`."""
    saver, writer, engine, _ = await open_store(
        tmp_path, Metrics(), task_max=10**6, total_max=10**6, per_replica=True
    )
    elsewhere = ArtifactStore(
        tmp_path / "other-replica" / "artifacts",
        ArtifactRepository(engine),
        writer,
        Metrics(),
        task_max_bytes=10**6,
        total_max_bytes=10**6,
        per_replica=True,
    )
    try:
        saved = await save(saver, "a" * 32, 1)
        assert (await saver.read("a" * 32, saved))[1] == PNG
        with pytest.raises(NotFound) as absent:
            await elsewhere.read("a" * 32, saved)
        assert absent.value.details == {"reason": "not_on_this_replica"}
        assert "BIGTHREE_ARTIFACTS_DIR" in absent.value.message
        (tmp_path / "artifacts" / ("a" * 32) / f"{saved}.png").unlink()
        single = ArtifactStore(
            tmp_path / "artifacts",
            ArtifactRepository(engine),
            writer,
            Metrics(),
            task_max_bytes=10**6,
            total_max_bytes=10**6,
        )
        with pytest.raises(NotFound) as lost:
            await single.read("a" * 32, saved)
        assert lost.value.details == {"reason": "missing"}
    finally:
        await writer.close(1.0)
        await engine.dispose()


def files(root: Path) -> list[str]:
    """Every file under `root`, temp files included."""
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


@dataclass
class Held:
    """A save whose file is on disk while the store refuses its row (kept for a retry)."""

    artifacts: ArtifactStore
    writer: StoreWriter
    gate: Gate
    metrics: Metrics
    saving: asyncio.Task[str]


@pytest.fixture
async def held(tmp_path: Path) -> AsyncIterator[Held]:
    metrics = Metrics()
    artifacts, writer, engine, gate = await open_store(
        tmp_path, metrics, gate=True, task_max=10**6, total_max=10**6
    )
    assert gate is not None
    saving = asyncio.create_task(save(artifacts, "a" * 32, 1))
    await gate.refused.wait()
    try:
        yield Held(artifacts, writer, gate, metrics, saving)
    finally:
        await writer.close(1.0)
        await engine.dispose()


async def test_a_row_never_stored_takes_its_file_with_it(held: Held, tmp_path: Path) -> None:
    """The store cannot take the row and the service stops: the save fails as not stored,
    and no file is left that no row names (eviction would never find it)."""
    assert len(files(tmp_path / "artifacts")) == 1
    assert held.writer.health().pending_writes == {"artifact_saved": 1}
    await held.writer.close(0.0)
    with pytest.raises(StorageUnavailable):
        await held.saving
    assert files(tmp_path / "artifacts") == []
    assert await held.artifacts.for_task("a" * 32) == []
    assert gauge(held.metrics) == 0


async def test_a_cancelled_caller_leaves_the_save_to_finish(held: Held, tmp_path: Path) -> None:
    """The task's deadline cancels it while its screenshot's row waits for the store: once
    the store takes writes again, file and row are both there, and counted."""
    held.saving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await held.saving
    held.gate.passing.set()
    assert await held.writer.flush(5.0, while_unavailable=True)
    (listed,) = await held.artifacts.for_task("a" * 32)
    assert files(tmp_path / "artifacts") == [f"{listed.id}.png"]
    await save(held.artifacts, "a" * 32, 2)  # after the first save is done (one at a time)
    assert gauge(held.metrics) == 2 * len(PNG)
    _, data = await held.artifacts.read("a" * 32, listed.id)
    assert data == PNG


def test_png_size_reads_the_header() -> None:
    assert png_size(tiny_png(13, 7)) == (13, 7)
    with pytest.raises(ValueError):
        png_size(b"GIF89a....................")
