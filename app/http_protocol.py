"""uvicorn's HTTP/1.1 protocol (httptools), with a response's head and body sent together.

uvicorn writes a response's status line and headers the moment the app sends
`http.response.start`, and its body as a second write: two system calls and two TCP
segments for every small response (a task read, a submit, a health probe), and two reads
for the client. Here the connection's transport holds a head back until the next write
— the body, in the same loop step for an ordinary response — and sends both in one; a head
whose body comes later (a stream) goes out on the loop's next step, and a large body is
written after its head rather than copied behind it (`JOIN_LIMIT`). aiohttp's server does
the same for small responses ("coalescing"); uvicorn has no setting for it, hence this
subclass. Everything else — parsing, keep-alive, flow control, pipelining, the upgrade to
the WebSocket protocol, which gets the socket's own transport — stays uvicorn's.
(bench/README.md, run 17.)
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# how uvicorn's httptools protocol starts every response head it writes (the status line)
_HEAD = b"HTTP/1.1 "
# a body larger than this follows its head in a write of its own rather than be copied
# behind it (a file download): one more system call costs less than the copy
JOIN_LIMIT = 64 * 1024


class HeadHoldingTransport(asyncio.Transport):
    """A connection's transport that sends a response head with whatever is written next."""

    __slots__ = ("_held", "_loop", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if len(data) <= JOIN_LIMIT:
                self.transport.write(held + data)
                return
            self.transport.write(held)
            self.transport.write(data)
        elif data[:9] == _HEAD:
            self._held = bytes(data)
            self._loop.call_soon(self.flush)  # in case nothing follows in this step
        else:
            self.transport.write(data)

    def flush(self) -> None:
        """Send a held head now."""
        held = self._held
        if held is not None:
            self._held = None
            if not self.transport.is_closing():
                self.transport.write(held)

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        self._held = None
        self.transport.abort()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()

    def is_reading(self) -> bool:
        return self.transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.transport.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() + len(self._held or b"")

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.transport.set_write_buffer_limits(high, low)

    def write_eof(self) -> None:
        self.flush()
        self.transport.write_eof()

    def can_write_eof(self) -> bool:
        return self.transport.can_write_eof()


class OneWriteHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a `HeadHoldingTransport` (the `http` of
    `app.server.uvicorn_config`)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(HeadHoldingTransport(transport, self.loop))

    def handle_websocket_upgrade(self) -> None:
        holding = self.transport
        if isinstance(holding, HeadHoldingTransport):
            # the WebSocket protocol writes its frames itself, on the socket's transport
            holding.flush()
            self.transport = holding.transport
        super().handle_websocket_upgrade()
