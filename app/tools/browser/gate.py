"""A per-session SOCKS5 gate: every TCP connection Chromium opens goes through it, and only
connections to an allowed origin's host and port are made.

Why, on top of Playwright routing: Playwright hands the page's requests to the guard, but
not the hops of a redirect (it continues those itself), so `allowed → 302 → evil` would
reach `evil`. The session's browser context uses this gate as its proxy (loopback
included), so a redirect hop, a worker's request or anything else the routing does not see
still cannot connect elsewhere. The gate knows hosts and ports, not schemes or paths; the
routing layer checks those. The browser itself is launched behind a second gate that admits
nothing (Chromium's own background calls — updates, sign-in — go nowhere, silently) and,
as Playwright does for a SOCKS proxy, resolves no host name itself.

Hand-written because no maintained Python package offers a SOCKS5 *server* with a hook to
refuse a CONNECT: this is RFC 1928's CONNECT command, no authentication, ~100 lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import struct
from collections.abc import Callable

from app.tools.browser.guard import NavigationGuard, Refusal

SOCKS_VERSION = 5
NO_AUTH, NO_ACCEPTABLE = 0, 0xFF
CONNECT = 1
ATYP_IPV4, ATYP_DOMAIN, ATYP_IPV6 = 1, 3, 4
SUCCEEDED, GENERAL_FAILURE, NOT_ALLOWED, HOST_UNREACHABLE, NOT_SUPPORTED = 0, 1, 2, 4, 7
HANDSHAKE_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 10.0
CHUNK = 65_536
# Chromium calls its own services from the page's profile too (autofill suggestions when a
# form is typed into, safe browsing); Playwright's way of turning features off leaves no room
# to turn these off as well. Refused like any host, they are not *reported*: they are not
# the page's doing. A page's own request to such a host is still reported by the routing.
QUIET_HOST_SUFFIXES = (".googleapis.com", ".google.com", ".gstatic.com", ".gvt1.com")


class ConnectionGate:
    """Listens on 127.0.0.1 (an ephemeral port) until `aclose()`. `on_refused=None`: refuse
    silently (the browser-wide gate, which only ever sees Chromium's own background calls)."""

    def __init__(
        self, guard: NavigationGuard, on_refused: Callable[[Refusal], None] | None
    ) -> None:
        self._guard = guard
        self._on_refused = on_refused
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def proxy_url(self) -> str:
        assert self._server is not None, "start() first"
        port = self._server.sockets[0].getsockname()[1]
        return f"socks5://127.0.0.1:{port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for handler in list(self._handlers):
            handler.cancel()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=5.0)
        self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        try:
            await self._serve(reader, writer)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            self._handlers.discard(handler)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
            target = await self._handshake(reader, writer)
        if target is None:
            return
        host, port = target
        refusal = self._guard.check_endpoint(host, port)
        if refusal is not None:
            if self._on_refused is not None and not host.lower().endswith(QUIET_HOST_SUFFIXES):
                self._on_refused(refusal)
            await _reply(writer, NOT_ALLOWED)
            return
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                up_reader, up_writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError):
            await _reply(writer, HOST_UNREACHABLE)
            return
        try:
            await _reply(writer, SUCCEEDED)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[str, int] | None:
        version, count = await reader.readexactly(2)
        methods = await reader.readexactly(count)
        if version != SOCKS_VERSION or NO_AUTH not in methods:
            writer.write(bytes([SOCKS_VERSION, NO_ACCEPTABLE]))
            await writer.drain()
            return None
        writer.write(bytes([SOCKS_VERSION, NO_AUTH]))
        await writer.drain()
        version, command, _reserved, address_type = await reader.readexactly(4)
        if address_type == ATYP_IPV4:
            host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
        elif address_type == ATYP_IPV6:
            host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
        elif address_type == ATYP_DOMAIN:
            length = (await reader.readexactly(1))[0]
            host = (await reader.readexactly(length)).decode("ascii", errors="replace")
        else:
            await _reply(writer, NOT_SUPPORTED)
            return None
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        if version != SOCKS_VERSION or command != CONNECT:
            await _reply(writer, NOT_SUPPORTED)
            return None
        return host, port


async def _reply(writer: asyncio.StreamWriter, status: int) -> None:
    # bound address 0.0.0.0:0: Chromium does not use it
    writer.write(bytes([SOCKS_VERSION, status, 0, ATYP_IPV4]) + bytes(6))
    await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        if writer.can_write_eof():
            writer.write_eof()
