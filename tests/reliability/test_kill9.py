"""kill -9 under load, with live subscribers: what they saw is what the store kept.

A subscriber on the event stream and several clients posting events and submitting tasks;
the service is killed with SIGKILL mid-stream and started again on the same data. Then the
subscriber's received seqs are a prefix of the stored log (it never saw an event the store
lost), no seq is given twice (new events number above everything seen), and every
acknowledged event (201) and task (202) is in the store.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import httpx

from app.fake_upstream.client import FakeUpstreamClient
from tests.conftest import provider_env
from tests.support.api import create_agent, open_events, recv_json
from tests.support.procs import Proc, start_service

POSTERS = 4
SEEN_BEFORE_KILL = 150


def stored_log(http: httpx.Client) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        page = http.get("/v1/events", params={"after_seq": after, "limit": 1000}).json()
        events += page["events"]
        if not page["events"]:
            return events
        after = page["next_after_seq"]


def test_kill_9_loses_nothing_acknowledged_and_reuses_no_seq(tmp_path, fake_upstream: Proc) -> None:
    FakeUpstreamClient(fake_upstream.url).script("kill9-model", [{"latency_s": 0.05, "repeat": -1}])
    data = tmp_path / "data"
    env = provider_env(fake_upstream.url)
    proc = start_service(tmp_path, env=env, data_dir=data)
    received: list[dict[str, Any]] = []
    acked_events: dict[int, dict[str, Any]] = {}
    acked_tasks: set[str] = set()
    stop = threading.Event()
    lock = threading.Lock()
    try:
        with httpx.Client(base_url=proc.url, timeout=10) as http:
            for i in range(POSTERS):
                create_agent(http, f"k9-{i}", model="kill9-model")

        def post(n: int) -> None:
            with httpx.Client(base_url=proc.url, timeout=10) as http:
                i = 0
                while not stop.is_set():
                    i += 1
                    try:
                        r = http.post(
                            "/v1/events", json={"type": "k9", "payload": {"w": n, "i": i}}
                        )
                        if r.status_code == 201:
                            with lock:
                                acked_events[r.json()["seq"]] = r.json()
                        if i % 5 == 0:
                            t = http.post(f"/v1/agents/k9-{n}/tasks", json={"prompt": f"{i}"})
                            if t.status_code == 202:
                                with lock:
                                    acked_tasks.add(t.json()["id"])
                    except httpx.HTTPError:  # the kill cuts requests in flight
                        return

        with open_events(proc.url) as ws:
            posters = [threading.Thread(target=post, args=(n,)) for n in range(POSTERS)]
            for t in posters:
                t.start()
            while len(received) < SEEN_BEFORE_KILL:
                received.append(recv_json(ws, timeout=20))
            proc.signal(signal.SIGKILL)
            proc.wait(timeout=10)
            stop.set()
            for t in posters:
                t.join(timeout=30)
            try:  # whatever was already in the socket's buffers is part of what it saw
                while True:
                    received.append(recv_json(ws, timeout=2))
            except Exception:
                pass
    finally:
        stop.set()
        proc.stop()

    assert acked_events and acked_tasks
    restarted = start_service(tmp_path, env=env, data_dir=data)
    try:
        with httpx.Client(base_url=restarted.url, timeout=10) as http:
            log = stored_log(http)
            by_seq = {e["seq"]: e for e in log}
            seen = [e["seq"] for e in received]
            assert seen == sorted(seen) and len(set(seen)) == len(seen)
            # a prefix of the stored log: every event seen is stored, as it was seen
            stored_seqs = [e["seq"] for e in log]
            assert stored_seqs[: len(seen)] == seen, "a subscriber saw an event the store lost"
            for event in received:
                assert by_seq[event["seq"]] == event
            # every acknowledged event is stored, unchanged
            for seq, event in acked_events.items():
                assert by_seq.get(seq) == event
            # every accepted task is stored
            for task_id in acked_tasks:
                assert http.get(f"/v1/tasks/{task_id}").status_code == 200
            # numbering goes on above everything ever seen or acknowledged
            fresh = http.post("/v1/events", json={"type": "after"}).json()
            assert fresh["seq"] > max([*seen, *acked_events, *stored_seqs[:-1]])
            assert by_seq.get(fresh["seq"]) is None
    finally:
        restarted.stop()
