"""Real PostgreSQL and Redis servers for tests, and a database / key prefix of their own.

Where the machine runs them already (127.0.0.1:5432 and :6379, or the URLs in
BIGTHREE_TEST_POSTGRES_URL / BIGTHREE_TEST_REDIS_URL), the tests use them; otherwise a
private instance is started from Debian's `postgresql` / `redis-server` binaries (installed
by .ci/run) in a temporary directory on a free loopback port. The restart tests always use
a private instance: the machine's shared servers are never restarted.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support.procs import free_port, wait_until

SHARED_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432"
SHARED_REDIS = "redis://127.0.0.1:6379/0"


def listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def unavailable(what: str, hint: str) -> None:
    """Skip (a developer's machine without it) or fail (CI must have it)."""
    message = f"{what} not available: {hint}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must install it: see .ci/run)")
    pytest.skip(message)


def _as_postgres_user(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the `postgres` user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


def postgres_bin(tool: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))
    return found[-1] if found else shutil.which(tool)


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own: initdb in a temp dir, loopback, trust auth."""

    def __init__(self) -> None:
        initdb = postgres_bin("initdb")
        if initdb is None:
            unavailable("PostgreSQL", "apt-get install postgresql")
        assert initdb is not None
        self._pg_ctl = str(Path(initdb).with_name("pg_ctl"))
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="bigthree-pg-"))
        self.data = self.dir / "data"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(
            _as_postgres_user(
                [initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"]
            ),
            check=True,
            capture_output=True,
        )
        self.start()

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200"
        )
        subprocess.run(
            _as_postgres_user(
                [
                    self._pg_ctl,
                    "-D",
                    str(self.data),
                    "-o",
                    options,
                    "-l",
                    str(self.dir / "log"),
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            _as_postgres_user([self._pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop"]),
            check=False,
            capture_output=True,
        )

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """A redis-server of the test's own on a free loopback port, keeping nothing on disk."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("Redis", "apt-get install redis-server")
        assert binary is not None
        self._binary = binary
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="bigthree-redis-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.dir / "log").open("ab")
        self._proc = subprocess.Popen(
            [
                self._binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(lambda: listening(self.port), what="redis-server to listen")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=10)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


_private: list[PrivatePostgres | PrivateRedis] = []


@cache
def postgres_server() -> str:
    """URL (no database) of a PostgreSQL server for tests: the machine's, or a private one."""
    if os.environ.get("BIGTHREE_TEST_POSTGRES_URL"):
        return os.environ["BIGTHREE_TEST_POSTGRES_URL"].rstrip("/")
    if listening(5432):
        return SHARED_POSTGRES
    server = PrivatePostgres()
    _private.append(server)
    return server.url


@cache
def redis_server() -> str:
    """URL of a Redis server for tests: the machine's, or a private one."""
    if os.environ.get("BIGTHREE_TEST_REDIS_URL"):
        return os.environ["BIGTHREE_TEST_REDIS_URL"]
    if listening(6379):
        return SHARED_REDIS
    server = PrivateRedis()
    _private.append(server)
    return server.url


def stop_private_servers() -> None:
    while _private:
        _private.pop().close()


def _dsn(server_url: str, database: str = "postgres") -> str:
    return server_url.replace("postgresql+asyncpg://", "postgresql://") + f"/{database}"


async def _admin(server_url: str, sql: str) -> None:
    conn = await asyncpg.connect(_dsn(server_url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _run(coro: Coroutine[Any, Any, None]) -> None:
    """Run `coro` to its end, also from a test whose event loop is running (in a thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


@contextmanager
def postgres_database(server_url: str | None = None) -> Iterator[str]:
    """A fresh, empty database of the test's own (dropped afterwards); yields its URL."""
    server = server_url or postgres_server()
    name = f"bigthree_test_{uuid.uuid4().hex[:12]}"
    _run(_admin(server, f'CREATE DATABASE "{name}"'))
    try:
        yield f"{server}/{name}"
    finally:
        _run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _drop_prefix(url: str, prefix: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@contextmanager
def redis_prefix(url: str | None = None) -> Iterator[tuple[str, str]]:
    """(redis URL, a key prefix of the test's own); the prefix's keys are deleted afterwards."""
    server = url or redis_server()
    prefix = f"bigthree-test-{uuid.uuid4().hex[:12]}:"
    try:
        yield server, prefix
    finally:
        _run(_drop_prefix(server, prefix))
