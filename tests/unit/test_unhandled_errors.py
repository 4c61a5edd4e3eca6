"""An exception nothing handles, in a FastAPI route or in the fast lane: the 500 problem,
logged once with status 500, and the client's keep-alive connection still serves its next
request (a real uvicorn on loopback)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
import uvicorn
from fastapi import FastAPI

from app.core.config import Settings
from app.main import create_app
from app.server import uvicorn_config
from tests.support.procs import free_port, wait_until


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    app = create_app(Settings(_env_file=None, data_dir=tmp_path))  # type: ignore[call-arg]

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("bug")

    return app


@pytest.fixture
def server(app: FastAPI) -> Iterator[int]:

    port = free_port()
    srv = uvicorn.Server(uvicorn_config(app, host="127.0.0.1", port=port))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    wait_until(lambda: srv.started, what="uvicorn to start")
    yield port
    srv.should_exit = True
    thread.join(timeout=30)


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        body += sock.recv(65536)
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(
    ("path", "handler", "error"),
    [
        ("/boom", "/boom", "RuntimeError('bug')"),  # a FastAPI route: its last-resort layer
        ("/v1/tasks/abc", "/v1/tasks/{task_id}", "RuntimeError('lane bug')"),  # the fast lane
    ],
)
def test_a_500_is_the_problem_keeps_the_connection_and_is_logged_once(
    app: FastAPI, server: int, path: str, handler: str, error: str
) -> None:
    """A request that fails on a bug answers the internal_error problem with its request
    id, counted as a 5xx and logged once; the same socket then gets /health and /metrics."""

    async def broken(task_id: str) -> None:
        raise RuntimeError("lane bug")

    app.state.manager.current_task = broken
    with (
        structlog.testing.capture_logs() as logs,
        socket.create_connection(("127.0.0.1", server), timeout=10) as sock,
    ):
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nX-Request-Id: r-500\r\n\r\n".encode())
        status, headers, body = read_response(sock)
        assert status == 500
        assert json.loads(body)["error"] == {
            "type": "internal_error",
            "message": "internal error; see server logs",
            "request_id": "r-500",
        }
        assert headers["x-request-id"] == "r-500"
        assert headers.get("connection") != "close"
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(sock)[0] == 200
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        metrics = read_response(sock)[2].decode()
    assert f'http_requests_total{{handler="{handler}",method="GET",status="5xx"}} 1.0' in metrics
    lines = [e for e in logs if e.get("event") == "request" and e.get("path") == path]
    assert [e["status"] for e in lines] == [500]
    assert [e["error"] for e in logs if e.get("event") == "unhandled_error"] == [error]
