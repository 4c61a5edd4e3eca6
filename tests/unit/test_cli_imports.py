"""The `bigthree` client commands load the client and nothing of the server: no web framework,
no store, no server settings (their start-up time; figures from bench/cli_startup.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_ONLY = (
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "asyncpg",
    "aiosqlite",
    "redis",
    "pydantic_settings",
    "app.core.errors",
    "app.core.config",
    "app.main",
)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def run_cli(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """`python -X importtime -m app.cli ARGS` from this tree: the result and every module the
    run imported."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "app.cli", *args],
        cwd=ROOT,  # `-m` puts the working directory first: this tree's `app`
        env={**os.environ, "BIGTHREE_URL": f"http://127.0.0.1:{closed_port()}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "imported package" not in line
    }
    return result, modules


def server_modules(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in SERVER_ONLY or m in SERVER_ONLY)


@pytest.mark.parametrize("args", [["--help"], ["agents", "--help"], ["tasks", "--help"]])
def test_help_loads_neither_server_nor_client(args: list[str]) -> None:
    result, modules = run_cli(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Usage" in result.stdout
    assert "typer" in modules  # the import list was read
    assert server_modules(modules) == []
    assert "app.client" not in modules  # help never needs the HTTP client


@pytest.mark.parametrize(
    "args", [["agents", "ls"], ["tasks", "ls"], ["run", "helper", "hi"], ["costs"], ["providers"]]
)
def test_client_commands_load_the_client_only(args: list[str]) -> None:
    result, modules = run_cli(*args)
    assert result.returncode == 3, result.stderr[-2000:]  # it got as far as the request
    assert "cannot reach" in result.stderr
    assert {"app.client", "app.agents.schemas", "httpx"} <= modules
    assert server_modules(modules) == []


def test_the_client_raises_the_servers_error_classes() -> None:
    """One error tree: the client's classes are the ones the server maps to responses."""
    import app.client
    import app.core.errors

    for name in ("AppError", "NotFound", "Conflict", "InvalidInput", "Draining"):
        assert getattr(app.client, name) is getattr(app.core.errors, name)
