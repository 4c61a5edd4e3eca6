"""A subscriber that stops reading is dropped; publishers and other subscribers carry on."""

from __future__ import annotations

import base64
import os
import threading
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.conftest import provider_env
from tests.support.api import open_events, recv_json
from tests.support.procs import start_service, wait_until
from tests.support.sockets import server_side_established

EVENTS = 300
AHEAD = 4  # BIGTHREE_WS_QUEUE_SIZE is 10


def test_slow_subscriber_is_dropped_without_blocking_others(tmp_path, fake_upstream) -> None:
    """A stalled reader is dropped and its socket freed promptly (server side no longer
    ESTABLISHED with megabytes unsent); posts still succeed and a live reader gets all."""
    env = {**provider_env(fake_upstream.url), "BIGTHREE_WS_QUEUE_SIZE": "10"}
    proc = start_service(tmp_path, env=env)
    # incompressible, so permessage-deflate cannot hide the volume
    blob = base64.b64encode(os.urandom(45_000)).decode()
    received: list[dict[str, Any]] = []
    try:
        with (
            httpx.Client(base_url=proc.url, timeout=10) as http,
            open_events(proc.url, stalled=True, type="bulk") as stalled,
            open_events(proc.url, type="bulk") as healthy,
        ):
            # the live reader is a thread of this process, and the service can publish faster
            # than it reads: posts stay at most AHEAD events past what it has read (fewer
            # than the queue holds), so only the stalled reader can fall behind
            reads = threading.Semaphore(AHEAD)

            def read_all() -> None:
                while len(received) < EVENTS:
                    received.append(recv_json(healthy, timeout=30))
                    reads.release()

            reader = threading.Thread(target=read_all)
            reader.start()
            seqs = []
            for i in range(EVENTS):
                assert reads.acquire(timeout=30), f"the live reader stopped after {len(received)}"
                response = http.post(
                    "/v1/events", json={"type": "bulk", "payload": {"i": i, "blob": blob}}
                )
                assert response.status_code == 201
                seqs.append(response.json()["seq"])
            reader.join(timeout=60)
            assert [e["seq"] for e in received] == seqs
            # the stalled client never read up to the 4008 close frame: the server gave up
            # on it (CLOSE_GRACE_S) and freed the socket while the client still holds it
            port = int(proc.url.rsplit(":", 1)[1])
            client_port = stalled.socket.getsockname()[1]
            wait_until(
                lambda: server_side_established(port, client_port) == 0,
                timeout=30,
                what="the server to let go of the dropped reader's socket",
            )
            with pytest.raises(ConnectionClosed):
                while True:
                    stalled.recv(timeout=30)
        metrics = httpx.get(proc.url + "/metrics").text
        assert 'bigthree_ws_dropped_total{reason="slow_consumer",stream="events"} 1.0' in metrics
    finally:
        proc.stop()
