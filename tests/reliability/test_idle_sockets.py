"""Idle event sockets are cheap, are let go of when they close, and their memory is reused.

Bounded ratios of the service's own RSS (no timing): the cost per idle socket stays under
a cap, every server-side socket is gone after the clients close, and later rounds of as
many sockets add only a fraction of what the first took (the first rounds'
memory is reused: nothing is kept per closed socket). Figures for 1,000 sockets: bench/README.md.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import provider_env
from tests.support.procs import Proc, start_service, wait_until
from tests.support.sockets import measure_idle, server_side_established

SOCKETS = 400
# measured ~20 KiB per idle socket here with compression off (its default; bench: 15 KiB)
MAX_PER_SOCKET = 64 * 1024
# a later round may add at most this share of what the first round added
MAX_LATER_ROUND_SHARE = 0.25


def test_idle_sockets_cost_little_and_their_memory_is_reused(
    tmp_path: Path, fake_upstream: Proc
) -> None:
    proc = start_service(tmp_path, env=provider_env(fake_upstream.url))
    port = int(proc.url.rsplit(":", 1)[1])
    try:
        first = asyncio.run(measure_idle(proc.url, proc.popen.pid, SOCKETS))
        assert first.per_socket(SOCKETS) < MAX_PER_SOCKET, first
        wait_until(lambda: server_side_established(port) == 0, what="every socket let go")
        # a later round may still meet garbage the collector has not reached yet (its gen0
        # threshold is high), so what it adds varies from round to round; what is kept per
        # closed socket would be added again by every round, the least-growing one included
        rounds = [asyncio.run(measure_idle(proc.url, proc.popen.pid, SOCKETS)) for _ in range(5)]
        least = min(later.open_ - later.baseline for later in rounds)
        assert least < MAX_LATER_ROUND_SHARE * (first.open_ - first.baseline), (first, rounds)
    finally:
        proc.stop()
