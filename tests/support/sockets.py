"""Idle event-stream sockets against a running service: open many, measure, close them.

Used by tests/reliability/test_idle_sockets.py (bounded ratios) and bench/ (the figures).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def server_side_established(server_port: int, client_port: int | None = None) -> int:
    """Server-side TCP connections (local port `server_port`, to `client_port` if given)
    in state ESTABLISHED."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if local_port != server_port or fields[3] != "01":  # 01 = ESTABLISHED
                continue
            if client_port is None or remote_port == client_port:
                count += 1
    return count


@dataclass(frozen=True)
class IdleFigures:
    baseline: int  # RSS before any socket, bytes
    open_: int  # RSS with every socket open
    closed: int  # RSS after they all closed

    def per_socket(self, count: int) -> float:
        return (self.open_ - self.baseline) / count


async def _open(url: str, count: int, batch: int = 50) -> list[ClientConnection]:
    # clients offer compression, as browsers and the websockets library do by default
    sockets: list[ClientConnection] = []
    for start in range(0, count, batch):
        opened = await asyncio.gather(
            *(
                connect(url, open_timeout=30, ping_interval=None)
                for _ in range(min(batch, count - start))
            )
        )
        sockets.extend(opened)
    return sockets


async def _ping_all(sockets: list[ClientConnection]) -> None:
    """One ping/pong per socket: every one is served, not just accepted."""
    for ws in sockets:
        await ws.send('{"type": "ping"}')
    for ws in sockets:
        while '"pong"' not in str(await asyncio.wait_for(ws.recv(), 30)):
            pass


async def measure_idle(base_url: str, pid: int, count: int, settle_rounds: int = 3) -> IdleFigures:
    """RSS of `pid` before, while `count` idle event sockets are open, and after closing."""
    url = base_url.replace("http://", "ws://") + "/v1/events/ws?type=idle.nothing"
    baseline = rss_bytes(pid)
    sockets = await _open(url, count)
    await _ping_all(sockets)
    during = rss_bytes(pid)
    await asyncio.gather(*(ws.close() for ws in sockets))
    closed = during
    # the server lets go of each socket a moment after the client's close: read RSS again
    # until it stops falling (bounded rounds, each after a request the server had to serve)
    for _ in range(settle_rounds):
        async with connect(url, open_timeout=30) as probe:
            await probe.send('{"type": "ping"}')
            await asyncio.wait_for(probe.recv(), 30)
        now = rss_bytes(pid)
        if now >= closed:
            break
        closed = now
    return IdleFigures(baseline, during, closed)
