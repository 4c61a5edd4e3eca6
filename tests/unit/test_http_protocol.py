"""The HTTP protocol the service runs under (app/http_protocol.py): uvicorn's own httptools
protocol, driven with a transport that records each write — one write is one system call
and, with TCP_NODELAY, one segment on the wire."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.server import ServerState

from app.http_protocol import JOIN_LIMIT, OneWriteHttpProtocol
from app.server import uvicorn_config
from app.ws_protocol import PromptCloseProtocol


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.protocol: asyncio.BaseProtocol | None = None

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_write_buffer_size(self) -> int:
        return 0


def connect(app: Any) -> tuple[OneWriteHttpProtocol, RecordingTransport]:
    config = uvicorn_config(app, host="127.0.0.1", port=8000)
    config.load()
    protocol = OneWriteHttpProtocol(
        config=config, server_state=ServerState(), app_state={}, _loop=asyncio.get_running_loop()
    )
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport


async def steps(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


GET = b"GET /thing HTTP/1.1\r\nhost: test\r\n\r\n"


def answering(body_of: Callable[[Scope], bytes]) -> ASGIApp:
    """An app answering 200 with `body_of(scope)`, its length declared."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = body_of(scope)
        length = str(len(body)).encode()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", length)]}
        )
        await send({"type": "http.response.body", "body": body})

    return app


async def test_a_response_leaves_in_one_write_and_the_next_one_in_its_own() -> None:
    protocol, transport = connect(answering(lambda scope: scope["path"].encode()))
    protocol.data_received(GET)
    await steps(5)
    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b"\r\n\r\n/thing")
    protocol.data_received(GET.replace(b"/thing", b"/other"))  # keep-alive: the next request
    await steps(5)
    assert len(transport.writes) == 2 and transport.writes[1].endswith(b"\r\n\r\n/other")
    assert not transport.closed


async def test_a_large_body_follows_its_head_without_being_copied_behind_it() -> None:
    body = b"x" * (JOIN_LIMIT + 1)
    protocol, transport = connect(answering(lambda scope: body))
    protocol.data_received(GET)
    await steps(5)
    assert [len(write) for write in transport.writes][1:] == [len(body)]
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b"\r\n\r\n")


async def test_a_head_whose_body_comes_later_goes_out_on_the_next_step() -> None:
    """A stream's head is not held until its first chunk: it leaves at the loop's next
    step, and every write keeps its order."""
    chunk_ready = asyncio.get_running_loop().create_future()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await chunk_ready
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await send({"type": "http.response.body", "body": b"last"})

    protocol, transport = connect(app)
    protocol.data_received(GET)
    await steps(5)
    assert len(transport.writes) == 1  # the head alone, though no body has come
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"transfer-encoding: chunked" in transport.writes[0]
    chunk_ready.set_result(None)
    await steps(5)
    assert b"".join(transport.writes[1:]) == b"5\r\nfirst\r\n4\r\nlast\r\n0\r\n\r\n"


async def test_closing_sends_a_held_head_first() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        pass

    protocol, transport = connect(app)
    holding = protocol.transport
    holding.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert transport.writes == []
    holding.close()
    assert transport.writes == [b"HTTP/1.1 204 No Content\r\n\r\n"] and transport.closed


async def test_an_upgraded_connection_writes_its_frames_on_the_sockets_own_transport() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})

    protocol, transport = connect(app)
    protocol.data_received(
        b"GET /ws HTTP/1.1\r\nhost: test\r\nconnection: Upgrade\r\nupgrade: websocket\r\n"
        b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
    )
    await steps(5)
    socket = transport.protocol
    assert isinstance(socket, PromptCloseProtocol)
    assert socket.transport is transport
    assert transport.writes[0].startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    socket.transport.close()
