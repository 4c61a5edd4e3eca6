"""Alembic migrations on SQLite and PostgreSQL: fresh databases, databases made by earlier
releases, and several migrators at once."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.store.migrations import head_revision, upgrade_database
from app.store.schema import metadata
from tests.support.legacy import make_v1_database
from tests.support.procs import BIGTHREE, start_service

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _differences(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def inspect_db(url: str) -> dict[str, Any]:
    """Tables, schema differences from app/store/schema.py, and the recorded revision."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            differences = await conn.run_sync(_differences)
            revision = (
                await conn.execute(text("SELECT version_num FROM alembic_version"))
            ).scalar()
            agents = (await conn.execute(text("SELECT name, stream FROM agents"))).all()
    finally:
        await engine.dispose()
    return {"tables": tables, "differences": differences, "revision": revision, "agents": agents}


async def test_a_new_database_is_created_at_the_newest_revision(store_url: str) -> None:
    """Upgrading an empty database gives exactly the tables of app/store/schema.py (types
    included); upgrading again changes nothing."""
    first = await upgrade_database(store_url)
    second = await upgrade_database(store_url)
    assert (first.before, first.after) == (None, head_revision())
    assert not second.migrated
    found = await inspect_db(store_url)
    assert found["differences"] == []
    assert found["tables"] == {
        "alembic_version",
        "agents",
        "tasks",
        "events",
        "usage_totals",
        "artifacts",
    }


@pytest.mark.parametrize("version_6", [False, True], ids=["version-1", "version-6"])
async def test_a_pre_alembic_database_is_adopted_and_upgraded(
    store_url: str, version_6: bool
) -> None:
    """A database of the first release (schema_version 1, no `stream` column, no usage
    totals) upgrades in place — on PostgreSQL too, where the old migration list failed on
    `stream`'s integer default — and keeps its rows; so does one of the last pre-Alembic
    release (version 6, which has the events-by-task index, the claude_code columns and
    the artifacts table already)."""
    await make_v1_database(store_url, version_6=version_6)
    result = await upgrade_database(store_url)
    assert result.after == head_revision()
    found = await inspect_db(store_url)
    assert found["differences"] == []
    assert "schema_version" not in found["tables"] and "usage_totals" in found["tables"]
    assert [(name, bool(stream)) for name, stream in found["agents"]] == [("old-helper", False)]


async def test_concurrent_upgrades_migrate_once(store_url: str) -> None:
    """Three migrators at once on an empty database: the lock lets one run the revisions;
    the others wait and find the database at head."""
    results = await asyncio.gather(*(upgrade_database(store_url) for _ in range(3)))
    assert sorted(r.migrated for r in results) == [False, False, True]
    assert {r.after for r in results} == {head_revision()}


def test_a_release_data_dir_upgrades_in_place_and_serves_its_data(tmp_path: Path) -> None:
    """A data directory made by the last pre-Alembic release: the service starts on it, its
    agents, tasks and events are all there, and new events continue its seq."""
    data = tmp_path / "data"
    shutil.copytree(FIXTURES / "data-d7ea70e", data)
    proc = start_service(tmp_path, data_dir=data)
    try:
        with httpx.Client(base_url=proc.url, timeout=10) as http:
            agents = http.get("/v1/agents").json()
            assert [(a["name"], a["tasks_total"]) for a in agents["agents"]] == [("helper", 2)]
            tasks = http.get("/v1/agents/helper/tasks").json()["tasks"]
            assert sorted((t["prompt"], t["state"]) for t in tasks) == [
                ("hello 0", "succeeded"),
                ("hello 1", "succeeded"),
            ]
            old = http.get("/v1/events", params={"limit": 100}).json()["events"]
            assert [e["seq"] for e in old][:16] == list(range(1, 17))
            created = http.post(  # the deleted agent's name is free again
                "/v1/agents", json={"name": "gone", "provider": "openai", "model": "m"}
            )
            assert created.status_code == 201, created.text
            latest = http.get("/v1/events", params={"after_seq": 16}).json()["events"]
            assert latest and all(e["seq"] > 16 for e in latest)
    finally:
        proc.stop()
    found = asyncio.run(inspect_db(f"sqlite+aiosqlite:///{data / 'bigthree.db'}"))
    assert found["revision"] == head_revision()
    assert "schema_version" not in found["tables"]
    assert found["differences"] == []


def test_two_replicas_starting_at_once_migrate_once(tmp_path: Path, pg_url: str) -> None:
    """Two `bigthree serve` processes started together on an empty PostgreSQL database:
    one runs the migration, the other finds it done, and both come up."""
    env = {"BIGTHREE_DATABASE_URL": pg_url}
    procs = [start_service(tmp_path, env=env, wait=False) for _ in range(2)]
    try:
        for proc in procs:
            proc.wait_healthy()
        logs = [proc.logs() for proc in procs]
    finally:
        for proc in procs:  # only the start-up matters here: no drain
            proc.popen.kill()
            proc.wait()
    assert sum(log.count('"database_migrated"') for log in logs) == 1
    assert sum(log.count('"database_up_to_date"') for log in logs) == 1


def test_db_commands(tmp_path: Path, pg_url: str) -> None:
    """`bigthree db current` says an empty database is behind (exit 3); `db upgrade` brings
    it to head; then `db current` is up to date (exit 0). No password is printed."""
    env = {**os.environ, "BIGTHREE_DATABASE_URL": pg_url}

    def db(action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*BIGTHREE, "db", action],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    before = db("current")
    assert before.returncode == 3, before.stderr
    assert "revision none" in before.stdout
    upgraded = db("upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"at revision {head_revision()}" in upgraded.stdout
    after = db("current")
    assert after.returncode == 0 and "up to date" in after.stdout
