"""Idle event sockets are cheap, are let go of when they close, and their memory is reused.

Bounded ratios of the service's own RSS (no timing): the cost per idle socket stays under
a cap, every server-side socket is gone after the clients close, and a second round of as
many sockets adds only a fraction of what the first took (the first round's memory is
reused: nothing is kept per closed socket). Figures for 1,000 sockets: bench/README.md.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import provider_env
from tests.support.procs import Proc, start_service, wait_until
from tests.support.sockets import measure_idle, server_side_established

SOCKETS = 400
# measured ~46 KiB per idle socket with compression off (its default), ~92 KiB with it on
MAX_PER_SOCKET = 64 * 1024
# a second round may add at most this share of what the first round added
MAX_SECOND_ROUND_SHARE = 0.25


def test_idle_sockets_cost_little_and_their_memory_is_reused(
    tmp_path: Path, fake_upstream: Proc
) -> None:
    proc = start_service(tmp_path, env=provider_env(fake_upstream.url))
    port = int(proc.url.rsplit(":", 1)[1])
    try:
        first = asyncio.run(measure_idle(proc.url, proc.popen.pid, SOCKETS))
        assert first.per_socket(SOCKETS) < MAX_PER_SOCKET, first
        wait_until(lambda: server_side_established(port) == 0, what="every socket let go")
        second = asyncio.run(measure_idle(proc.url, proc.popen.pid, SOCKETS))
        grown = second.open_ - first.open_
        assert grown < MAX_SECOND_ROUND_SHARE * (first.open_ - first.baseline), (first, second)
    finally:
        proc.stop()
