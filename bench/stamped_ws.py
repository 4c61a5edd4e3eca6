"""WebSocket subscribers that time each message by when the kernel received it.

The fan-out rows time one event's way to 1,000 subscribers. A Python client reading 1,000
sockets one after another spends ~15-25 µs on each message, so it *reads* the last ones
up to ~20 ms after they *arrived*: a queue inside the load generator, not the service's
delivery. Each socket here asks the kernel for the time it received what is read
(`SO_TIMESTAMPNS`, the `time.time()` clock), and both times are kept: `kernel` (when the
message reached the subscriber's socket) and `read` (when this process got to it).

The handshake and the framing are websockets' sans-I/O `ClientProtocol`; the socket I/O is
asyncio's. No WebSocket client hands out the ancillary data of its reads (which carries the
timestamp), hence this small client of the benchmark's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from dataclasses import dataclass

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux's value; Python names it
_STAMP_SPACE = socket.CMSG_SPACE(16)  # one struct timespec


@dataclass(frozen=True, slots=True)
class Arrival:
    kernel: float  # the kernel's receive time of the bytes holding the message
    read: float  # when this process read them


def _stamp(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack("qq", data[:16])
            return float(seconds) + nanoseconds / 1e9
    return None


class StampedSubscriber:
    """One WebSocket connection; `expect(markers)` resolves with the `Arrival` of the first
    text message that contains one of `markers`."""

    def __init__(self, sock: socket.socket, protocol: ClientProtocol) -> None:
        self._sock = sock
        self._protocol = protocol
        self._markers: tuple[bytes, ...] = ()
        self._found: asyncio.Future[Arrival] | None = None
        self._loop = asyncio.get_running_loop()
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._loop.add_reader(sock, self._readable)

    @classmethod
    async def connect(cls, url: str) -> StampedSubscriber:
        uri = parse_uri(url)
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, (uri.host, uri.port))
            protocol = ClientProtocol(uri, max_size=None)
            protocol.send_request(protocol.connect())
            await loop.sock_sendall(sock, b"".join(protocol.data_to_send()))
            while protocol.state is State.CONNECTING:
                data = await loop.sock_recv(sock, 65536)
                if not data:
                    raise ConnectionError("the server closed during the handshake")
                protocol.receive_data(data)
            if protocol.handshake_exc is not None:
                raise protocol.handshake_exc
            protocol.events_received()  # the 101 response
        except BaseException:
            sock.close()
            raise
        return cls(sock, protocol)

    def expect(self, *markers: bytes) -> asyncio.Future[Arrival]:
        self._markers = markers
        self._found = self._loop.create_future()
        return self._found

    def _readable(self) -> None:
        try:
            data, ancillary, _, _ = self._sock.recvmsg(65536, _STAMP_SPACE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(exc)
            return
        read = time.time()
        if not data:
            self._fail(ConnectionError("the server closed the connection"))
            return
        self._protocol.receive_data(data)
        reply = self._protocol.data_to_send()  # pongs to the server's pings
        if reply:
            self._sock.send(b"".join(reply))
        for event in self._protocol.events_received():
            if not isinstance(event, Frame) or event.opcode is not Opcode.TEXT:
                continue
            found = self._found
            wanted = any(marker in event.data for marker in self._markers)
            if wanted and found is not None and not found.done():
                found.set_result(Arrival(_stamp(ancillary) or read, read))

    def _fail(self, exc: BaseException) -> None:
        self._loop.remove_reader(self._sock)
        if self._found is not None and not self._found.done():
            self._found.set_exception(exc)

    def close(self) -> None:
        self._loop.remove_reader(self._sock)
        self._protocol.send_close()
        with contextlib.suppress(OSError):
            self._sock.send(b"".join(self._protocol.data_to_send()))
        self._sock.close()
