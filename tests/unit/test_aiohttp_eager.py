"""The provider client's request leaves in the step that sends it (app/providers/aiohttp_eager.py).

A blocking HTTP/1.1 server on its own thread reads whole requests and answers each. The
test blocks the event loop on purpose: bytes that the client only queued for a later loop
step cannot reach the server while it is blocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from app.providers import aiohttp_eager
from app.providers.http import AiohttpClient
from app.resilience.timeouts import Timeouts

REPLY = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


@dataclass
class Upstream:
    url: str
    bodies: list[bytes] = field(default_factory=list)
    arrived: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))


def _serve(listener: socket.socket, upstream: Upstream) -> None:
    with contextlib.suppress(OSError):
        conn, _ = listener.accept()
        with conn:
            pending = b""
            while True:
                while b"\r\n\r\n" not in pending:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    pending += chunk
                head, _, pending = pending.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                while len(pending) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    pending += chunk
                upstream.bodies.append(pending[:length])
                pending = pending[length:]
                upstream.arrived.release()
                conn.sendall(REPLY)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    listener = socket.create_server(("127.0.0.1", 0))
    found = Upstream(f"http://127.0.0.1:{listener.getsockname()[1]}")
    thread = threading.Thread(target=_serve, args=(listener, found), daemon=True)
    thread.start()
    try:
        yield found
    finally:
        listener.close()
        thread.join(timeout=5)


def _client(upstream: Upstream) -> AiohttpClient:
    return AiohttpClient(upstream.url, Timeouts(), max_connections=4)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="aiohttp itself is eager on 3.12+")
async def test_the_body_leaves_before_the_loop_runs_anything_else(upstream: Upstream) -> None:
    client = _client(upstream)
    try:
        await client.post("/v1/warm", json={}, headers={})  # a pooled connection from now on
        assert upstream.arrived.acquire(timeout=5)
        seen: list[bool] = []

        def blocked_loop_looks() -> None:
            # runs right after the call's first step; blocks the loop while it waits
            seen.append(upstream.arrived.acquire(timeout=5))

        call = asyncio.create_task(client.post("/v1/x", json={"n": 1}, headers={}))
        asyncio.get_running_loop().call_soon(blocked_loop_looks)
        reply = await call
        assert seen == [True]
        assert reply.status_code == 200
        assert json.loads(upstream.bodies[-1]) == {"n": 1}
    finally:
        await client.aclose()


async def test_a_body_too_big_to_write_at_once_is_sent_whole(upstream: Upstream) -> None:
    """The writer's first step fills the socket and waits to drain; a task drives it on."""
    client = _client(upstream)
    big = {"text": "x" * 8_000_000}
    try:
        reply = await client.post("/v1/big", json=big, headers={})
        assert reply.status_code == 200
        assert json.loads(upstream.bodies[-1]) == big
        reply = await client.post("/v1/after", json={"n": 2}, headers={})
        assert json.loads(upstream.bodies[-1]) == {"n": 2}
    finally:
        await client.aclose()


def test_install_is_idempotent_and_leaves_the_rest_of_asyncio_alone() -> None:
    from aiohttp import client_reqrep

    aiohttp_eager.install()
    first = vars(client_reqrep)["asyncio"]
    aiohttp_eager.install()
    assert vars(client_reqrep)["asyncio"] is first
    assert first.sleep is asyncio.sleep
    assert first.CancelledError is asyncio.CancelledError
