"""Waiting for a task without polling: `?wait=`, the task's SSE stream, `task_id` filters."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from app.client import BigThreeClient, InvalidInput, NotFound, ServiceUnavailable
from app.fake_upstream.client import FakeUpstreamClient
from tests.conftest import AUTH_KEY, provider_env, unique
from tests.support.api import (
    create_agent,
    open_events,
    recv_until,
    submit,
    wait_task,
    ws_url,
)
from tests.support.procs import Proc, start_service, wait_until

SLOW = [{"text": "slow", "latency_s": 30}]


def slow_agent(client: httpx.Client, fake: FakeUpstreamClient) -> str:
    """An agent whose first task blocks in the fake upstream until cancelled."""
    name, model = unique("slow"), unique("slow-model")
    fake.script(model, SLOW)
    create_agent(client, name, model=model)
    return name


def running_task(client: httpx.Client, fake: FakeUpstreamClient) -> str:
    task = submit(client, slow_agent(client, fake), "take your time")
    wait_task(client, task["id"], {"running"})
    return str(task["id"])


def test_submit_with_wait_answers_200_with_the_result(client: httpx.Client) -> None:
    """POST ...?wait= holds until the task finishes and answers 200 with its result."""
    name = unique("waiter")
    create_agent(client, name)
    response = client.post(f"/v1/agents/{name}/tasks?wait=10", json={"prompt": "hi"})
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "succeeded"
    assert response.json()["result"] == "echo: hi"


def test_wait_that_runs_out_answers_202_with_the_current_state(
    client: httpx.Client, fake: FakeUpstreamClient
) -> None:
    """A task still running when the wait runs out comes back 202, as it is."""
    task_id = running_task(client, fake)
    response = client.get(f"/v1/tasks/{task_id}?wait=0.2")
    assert response.status_code == 202
    assert response.json()["state"] == "running"
    assert client.get(f"/v1/tasks/{task_id}").status_code == 200  # no wait: as before
    client.post(f"/v1/tasks/{task_id}/cancel")


def test_a_held_read_wakes_when_the_task_finishes(
    client: httpx.Client, fake: FakeUpstreamClient, service: Proc
) -> None:
    """A read waiting 60 s returns as soon as the task ends (here: cancelled), with 200."""
    task_id = running_task(client, fake)
    with ThreadPoolExecutor(1) as pool, httpx.Client(base_url=service.url, timeout=90) as other:
        held = pool.submit(other.get, f"/v1/tasks/{task_id}?wait=60")
        client.post(f"/v1/tasks/{task_id}/cancel")
        response = held.result(timeout=30)
    assert response.status_code == 200
    assert response.json()["state"] == "cancelled"


def test_wait_beyond_the_maximum_is_422(client: httpx.Client) -> None:
    """`wait` above BIGTHREE_MAX_WAIT_S (default 60) is refused, and nothing is queued."""
    name = unique("impatient")
    create_agent(client, name)
    response = client.post(f"/v1/agents/{name}/tasks?wait=61", json={"prompt": "x"})
    assert response.status_code == 422
    assert "at most 60" in response.json()["error"]["message"]
    assert client.get(f"/v1/agents/{name}").json()["tasks_total"] == 0
    assert client.get("/v1/tasks/0123abcd?wait=-1").status_code == 422


def test_malformed_task_ids_are_404_like_unknown_ones(client: httpx.Client) -> None:
    """Any id that names no task — unknown or malformed — answers 404 not_found."""
    for task_id in ("0123abcd", "not-hex!", "X" * 100, "%20"):
        for path in (f"/v1/tasks/{task_id}", f"/v1/tasks/{task_id}/events"):
            response = client.get(path)
            assert response.status_code == 404, (path, response.text)
            assert response.json()["error"]["type"] == "not_found"
        assert client.post(f"/v1/tasks/{task_id}/cancel").status_code == 404


def test_task_list_filters_by_agent_and_state(client: httpx.Client) -> None:
    """GET /v1/tasks lists tasks across agents, newest first, filtered by agent and state."""
    a, b = unique("lister-a"), unique("lister-b")
    create_agent(client, a)
    create_agent(client, b)
    first = wait_task(client, submit(client, a, "one")["id"])
    second = wait_task(client, submit(client, a, "two")["id"])
    wait_task(client, submit(client, b, "three")["id"])
    listed = client.get("/v1/tasks", params={"agent": a}).json()["tasks"]
    assert [t["id"] for t in listed] == [second["id"], first["id"]]
    done = client.get("/v1/tasks", params={"agent": a, "state": "succeeded", "limit": 1})
    assert [t["id"] for t in done.json()["tasks"]] == [second["id"]]
    assert client.get("/v1/tasks", params={"agent": a, "state": "failed"}).json()["tasks"] == []
    assert client.get("/v1/tasks", params={"state": "bogus"}).status_code == 422


# ---- the task's Server-Sent Events -------------------------------------------------------


def test_task_events_replay_then_end_after_the_terminal_event(
    client: httpx.Client, service: Proc
) -> None:
    """A finished task's stream replays its events in seq order and ends with task.succeeded;
    Last-Event-ID resumes after a seq, and past the terminal event the answer is 204."""
    name = unique("sse")
    create_agent(client, name)
    task = wait_task(client, submit(client, name, "stream me")["id"])
    with BigThreeClient(service.url) as bt:
        events = list(bt.task_events(task["id"]))
        types = [e.type for e in events]
        assert types[0] == "task.queued" and types[-1] == "task.succeeded", types
        assert {"task.running", "llm.request", "llm.response"} <= set(types)
        assert all(e.task_id == task["id"] for e in events)
        seqs = [e.seq for e in events]
        assert seqs == sorted(set(seqs))
        resumed = list(bt.task_events(task["id"], after_seq=seqs[1]))
        assert [e.seq for e in resumed] == seqs[2:]
    response = client.get(
        f"/v1/tasks/{task['id']}/events", headers={"last-event-id": str(seqs[-1])}
    )
    assert response.status_code == 204
    raw = client.get(f"/v1/tasks/{task['id']}/events")
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.text.startswith(f"id: {seqs[0]}\ndata: {{")


def test_task_events_follow_a_running_task_live(
    client: httpx.Client, fake: FakeUpstreamClient, service: Proc
) -> None:
    """A running task's stream delivers live events and ends right after task.cancelled."""
    task_id = running_task(client, fake)
    with BigThreeClient(service.url) as bt:
        stream = bt.task_events(task_id)
        seen = [next(stream)]
        while seen[-1].type != "task.running":
            seen.append(next(stream))
        client.post(f"/v1/tasks/{task_id}/cancel")
        seen.extend(stream)  # ends by itself
    assert seen[-1].type == "task.cancelled"


# ---- task_id filters ---------------------------------------------------------------------


def test_events_filter_by_task_id_over_rest_and_websocket(
    client: httpx.Client, service: Proc
) -> None:
    """`task_id` narrows GET /v1/events and the WebSocket stream to one task's events."""
    name = unique("filtered")
    create_agent(client, name)
    one = wait_task(client, submit(client, name, "one")["id"])
    two = wait_task(client, submit(client, name, "two")["id"])
    page = client.get("/v1/events", params={"task_id": one["id"], "limit": 1000}).json()
    assert page["events"] and {e["task_id"] for e in page["events"]} == {one["id"]}
    with open_events(service.url, task_id=two["id"]) as ws:
        got = recv_until(ws, lambda e: e["type"] == "task.succeeded")
    assert {e["task_id"] for e in got} == {two["id"]}
    with open_events(service.url, task_id="x" * 33) as ws:
        assert "task_id" in ws.recv(timeout=10)


# ---- the WebSocket bearer subprotocol ----------------------------------------------------


def subprotocol(key: str) -> str:
    return "bearer." + base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def test_websocket_accepts_the_key_as_a_subprotocol(auth_service: Proc) -> None:
    """A browser-style client offering `bigthree.v1` + `bearer.<key>` is let in, and the
    server selects `bigthree.v1` (the key is never echoed); a wrong key is refused."""
    url = ws_url(auth_service.url, "/v1/events/ws")
    with connect(url, subprotocols=["bigthree.v1", subprotocol(AUTH_KEY)]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "bigthree.v1"
        ws.send('{"type": "ping"}')
        # the stored backlog (service.started, ...) comes first, then the answer
        while '"pong"' not in (frame := str(ws.recv(timeout=10))):
            assert '"seq"' in frame
    with pytest.raises(Exception, match="403"):
        connect(url, subprotocols=["bigthree.v1", subprotocol("wrong-key-0123456789")])  # type: ignore[list-item]


# ---- bounded waiters and drain -----------------------------------------------------------


@pytest.fixture(scope="module")
def one_waiter(tmp_path_factory: pytest.TempPathFactory, fake_upstream: Proc) -> Iterator[Proc]:
    env = {**provider_env(fake_upstream.url), "BIGTHREE_MAX_WAITERS": "1"}
    proc = start_service(tmp_path_factory.mktemp("one-waiter"), env=env)
    yield proc
    proc.stop()


def hold_wait(pool: ThreadPoolExecutor, base: str, task_id: str) -> Future[httpx.Response]:
    """A read waiting up to 60 s, in the background. The only slot may be taken for a moment
    by the caller's probe (`?wait=0.01`): then it asks again until it holds."""

    def get() -> httpx.Response:
        with httpx.Client(base_url=base, timeout=90) as http:
            while True:
                response = http.get(f"/v1/tasks/{task_id}?wait=60")
                if response.status_code != 503:
                    return response

    return pool.submit(get)


def test_waiters_past_the_limit_get_503_with_retry_after_and_store_nothing(
    one_waiter: Proc, fake: FakeUpstreamClient
) -> None:
    """With BIGTHREE_MAX_WAITERS=1 and one request holding, a second wait is refused with
    503 + Retry-After — a submit with wait stores no task — and plain reads still work."""
    with httpx.Client(base_url=one_waiter.url, timeout=10) as http, ThreadPoolExecutor(1) as pool:
        task_id = running_task(http, fake)
        held = hold_wait(pool, one_waiter.url, task_id)
        wait_until(
            lambda: http.get(f"/v1/tasks/{task_id}?wait=0.01").status_code == 503,
            what="the first wait to hold the only slot",
        )
        refused = http.get(f"/v1/tasks/{task_id}?wait=1")
        assert refused.status_code == 503 and refused.headers["retry-after"]
        name = unique("late")
        create_agent(http, name)
        post = http.post(f"/v1/agents/{name}/tasks?wait=5", json={"prompt": "x"})
        assert post.status_code == 503 and post.headers["retry-after"]
        assert http.get(f"/v1/agents/{name}").json()["tasks_total"] == 0
        assert http.get(f"/v1/tasks/{task_id}").status_code == 200
        http.post(f"/v1/tasks/{task_id}/cancel")
        assert held.result(timeout=30).json()["state"] == "cancelled"
        # the slot is free again
        assert http.get(f"/v1/tasks/{task_id}?wait=1").status_code == 200


def test_the_client_raises_the_servers_error_types(one_waiter: Proc) -> None:
    """The Python client turns error bodies back into the server's exception classes."""
    with BigThreeClient(one_waiter.url) as bt:
        with pytest.raises(NotFound) as missing:
            bt.task("0" * 32)
        assert missing.value.details["status"] == 404 and missing.value.details["request_id"]
        with pytest.raises(InvalidInput):
            bt.task("0" * 32, wait_s=1000)
        assert issubclass(ServiceUnavailable, Exception)


def test_drain_releases_held_waits(tmp_path: Path, fake_upstream: Proc) -> None:
    """SIGTERM releases a request waiting on a running task at once: it answers 202 with
    the task as it is, instead of holding the draining server open."""
    fake = FakeUpstreamClient(fake_upstream.url)
    env = {**provider_env(fake_upstream.url), "BIGTHREE_MAX_WAITERS": "1"}
    service = start_service(tmp_path, env=env)
    try:
        with httpx.Client(base_url=service.url, timeout=10) as http, ThreadPoolExecutor(1) as pool:
            task_id = running_task(http, fake)
            held = hold_wait(pool, service.url, task_id)
            wait_until(  # the only wait slot is taken: the held request is waiting
                lambda: http.get(f"/v1/tasks/{task_id}?wait=0.01").status_code == 503,
                what="the wait to hold",
            )
            released = threading.Event()
            held.add_done_callback(lambda _: released.set())
            service.signal()
            assert released.wait(timeout=20), "the held wait was not released by the drain"
            response = held.result()
        assert response.status_code == 202
        assert response.json()["state"] == "running"
    finally:
        service.stop()
