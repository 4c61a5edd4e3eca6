"""Events: posting, paging, and the resumable WebSocket stream, over real sockets."""

from __future__ import annotations

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import AUTH_KEY, unique
from tests.support.api import create_agent, open_events, recv_json, recv_until, submit, wait_task
from tests.support.procs import start_service


def test_post_event_and_claude_code_hook_shape(client: httpx.Client) -> None:
    """External events, including Claude Code hook payloads, are stored with a seq."""
    plain = client.post(
        "/v1/events", json={"type": "deploy.done", "source": "ci", "payload": {"ok": True}}
    )
    assert plain.status_code == 201
    session = unique("session")
    hook = client.post(
        "/v1/events",
        json={
            "source_app": "my-project",
            "session_id": session,
            "hook_event_type": "PreToolUse",
            "payload": {"tool_name": "Bash"},
            "timestamp": 1_760_000_000_000,
        },
    )
    assert hook.status_code == 201, hook.text
    event = hook.json()
    assert event["seq"] > plain.json()["seq"]
    assert event["type"] == "PreToolUse" and event["source"] == "my-project"
    assert event["session_id"] == session
    assert event["payload"]["client_timestamp_ms"] == 1_760_000_000_000
    page = client.get(
        "/v1/events", params={"type": "PreToolUse", "after_seq": plain.json()["seq"]}
    ).json()
    assert [e["seq"] for e in page["events"]] == [event["seq"]]


def test_bad_events_are_refused(client: httpx.Client) -> None:
    """An event without a type, with a bad type, or with unknown fields is a 422."""
    for body in (
        {"payload": {}},
        {"type": "has space"},
        {"type": "x", "bogus": 1},
        {"type": "x", "timestamp": -5},
    ):
        response = client.post("/v1/events", json=body)
        assert response.status_code == 422, body
    assert client.get("/v1/events", params={"after_seq": -1}).status_code == 422
    assert client.get("/v1/events", params={"limit": 100_000}).status_code == 422


def test_every_task_transition_and_provider_call_is_an_event(client: httpx.Client) -> None:
    """A task emits queued → running → llm.request → llm.response → succeeded, seqs rising."""
    name = unique("evented")
    create_agent(client, name)
    task = submit(client, name, "hello")
    wait_task(client, task["id"])
    events = client.get("/v1/events", params={"agent": name}).json()["events"]
    types = [e["type"] for e in events if e["task_id"] == task["id"]]
    assert types == ["task.queued", "task.running", "llm.request", "llm.response", "task.succeeded"]
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    response = next(e for e in events if e["type"] == "llm.response")
    assert response["payload"]["usage"]["input_tokens"] > 0


def test_ws_backlog_then_live_without_gaps(service, client: httpx.Client) -> None:
    """The stream replays stored events after `after_seq`, then live ones, contiguous in seq."""
    start = client.post("/v1/events", json={"type": "marker"}).json()["seq"]
    for i in range(5):
        client.post("/v1/events", json={"type": "backlog", "payload": {"i": i}})
    with open_events(service.url, after_seq=start) as ws:
        backlog = [recv_json(ws) for _ in range(5)]
        assert [e["seq"] for e in backlog] == list(range(start + 1, start + 6))
        live_seq = client.post("/v1/events", json={"type": "live"}).json()["seq"]
        got = recv_until(ws, lambda e: e["seq"] == live_seq)
    seqs = [e["seq"] for e in backlog + got]
    assert seqs == list(range(start + 1, live_seq + 1))


def test_ws_resume_after_reconnect_misses_nothing(service, client: httpx.Client) -> None:
    """A client that reconnects with after_seq=<last seen> gets exactly what it missed."""
    name = unique("resume")
    with open_events(service.url, agent=name) as ws:
        client.post("/v1/events", json={"type": "note", "agent": name, "payload": {"n": 1}})
        first = recv_json(ws)
    missed = [
        client.post("/v1/events", json={"type": "note", "agent": name, "payload": {"n": n}}).json()[
            "seq"
        ]
        for n in (2, 3, 4)
    ]
    with open_events(service.url, agent=name, after_seq=first["seq"]) as ws:
        again = [recv_json(ws)["seq"] for _ in range(3)]
    assert again == missed


def test_ws_filters_by_agent_and_type(service, client: httpx.Client) -> None:
    """agent= and type= (with a trailing * prefix match) filter the stream."""
    name = unique("filtered")
    create_agent(client, name)
    with open_events(service.url, agent=name, type="task.*") as ws:
        task = submit(client, name, "hi")
        got = recv_until(ws, lambda e: e["type"] == "task.succeeded")
    assert {e["agent"] for e in got} == {name}
    assert [e["type"] for e in got] == ["task.queued", "task.running", "task.succeeded"]
    assert all(e["task_id"] == task["id"] for e in got)


def test_ws_bad_params_and_frames_get_close_codes(service) -> None:
    """Bad query params close 1008 with an error frame; bad frames close 1003/1007; ping pongs."""
    with open_events(service.url, after_seq="abc") as ws:
        assert recv_json(ws)["error"]["type"] == "validation_error"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    with open_events(service.url) as ws:
        ws.send('{"type": "ping"}')
        assert recv_until(ws, lambda e: e.get("type") == "pong")
        ws.send("not json")
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
    with open_events(service.url) as ws:
        ws.send(b"\x00\x01")
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003


def test_ws_requires_auth_when_keys_are_set(auth_service) -> None:
    """With keys configured, a WebSocket without a valid token is refused at the handshake."""
    with pytest.raises(InvalidStatus) as refused:
        open_events(auth_service.url)
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus):
        open_events(auth_service.url, token="wrong-token-wrong-token")
    with open_events(auth_service.url, token=AUTH_KEY) as ws:
        ws.send('{"type": "ping"}')
        assert recv_until(ws, lambda e: e.get("type") == "pong")
    with open_events(auth_service.url, headers={"Authorization": f"Bearer {AUTH_KEY}"}) as ws:
        ws.send('{"type": "ping"}')
        assert recv_until(ws, lambda e: e.get("type") == "pong")


def test_ws_compressed_stream_carries_backlog_and_live_events(tmp_path) -> None:
    """With BIGTHREE_WS_COMPRESSION=true a client offering permessage-deflate gets it, and
    live events (written per connection, compressed) arrive like the backlog, in order."""
    proc = start_service(tmp_path, env={"BIGTHREE_WS_COMPRESSION": "true"})
    try:
        with httpx.Client(base_url=proc.url, timeout=10) as http:
            blob = "compressible " * 500
            first = http.post("/v1/events", json={"type": "zip", "payload": {"blob": blob}})
            with open_events(proc.url, type="zip") as ws:
                extensions = ws.response.headers.get("sec-websocket-extensions", "")
                assert "permessage-deflate" in extensions
                assert recv_json(ws)["seq"] == first.json()["seq"]
                live = [
                    http.post(
                        "/v1/events", json={"type": "zip", "payload": {"i": i, "blob": blob}}
                    ).json()["seq"]
                    for i in range(3)
                ]
                got = [recv_json(ws) for _ in range(3)]
        assert [e["seq"] for e in got] == live
        assert all(e["payload"]["blob"] == blob for e in got)
    finally:
        proc.stop()
