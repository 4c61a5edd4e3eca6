"""ArtifactStore on a real SQLite file and a real directory: caps per task and in total,
oldest evicted first, evicted artifacts read as such, the stored-bytes gauge."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.artifacts.repository import ArtifactRepository
from app.artifacts.service import ArtifactStore, png_size
from app.core.errors import NotFound
from app.core.metrics import Metrics
from app.store.engine import create_engine
from app.store.migrations import migrate
from tests.unit.test_computer_use_wire import tiny_png

PNG = tiny_png(4, 4)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[tuple[ArtifactStore, Metrics, Path]]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await migrate(engine)
    metrics = Metrics()
    root = tmp_path / "artifacts"
    # each task keeps at most 3 images, all tasks together at most 5
    artifacts = ArtifactStore(
        root,
        ArtifactRepository(engine),
        metrics,
        task_max_bytes=3 * len(PNG),
        total_max_bytes=5 * len(PNG),
    )
    await artifacts.start()
    try:
        yield artifacts, metrics, root
    finally:
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
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await migrate(engine)
    try:
        first = ArtifactStore(
            tmp_path / "a",
            ArtifactRepository(engine),
            Metrics(),
            task_max_bytes=10**6,
            total_max_bytes=10**6,
        )
        await first.start()
        await save(first, "a" * 32, 1)
        await save(first, "a" * 32, 2)
        metrics = Metrics()
        again = ArtifactStore(
            tmp_path / "a",
            ArtifactRepository(engine),
            metrics,
            task_max_bytes=10**6,
            total_max_bytes=10**6,
        )
        await again.start()
        assert gauge(metrics) == 2 * len(PNG)
    finally:
        await engine.dispose()


def test_png_size_reads_the_header() -> None:
    assert png_size(tiny_png(13, 7)) == (13, 7)
    with pytest.raises(ValueError):
        png_size(b"GIF89a....................")
