"""The realtime orchestrator over real sockets: client ↔ service ↔ fake upstream Realtime."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.conftest import AUTH_KEY, provider_env, unique
from tests.support.api import recv_json, recv_until, stalled_socket, wait_task, ws_url
from tests.support.procs import Proc, start_fake_upstream, start_service, wait_until

Frame = dict[str, Any]


@pytest.fixture(scope="module")
def rt_fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    """A fake upstream of this module's own (its realtime script is not shared)."""
    proc = start_fake_upstream(tmp_path_factory.mktemp("rt-fake"))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def rt_service(tmp_path_factory: pytest.TempPathFactory, rt_fake: Proc) -> Iterator[Proc]:
    proc = start_service(tmp_path_factory.mktemp("rt-service"), env=provider_env(rt_fake.url))
    yield proc
    proc.stop()


@pytest.fixture
def http(rt_service: Proc) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=rt_service.url, timeout=10.0) as client:
        yield client


def script(fake: Proc, trigger: str, *responses: Frame) -> None:
    """Queue upstream answers for the session whose latest user text is `trigger`."""
    body = {"trigger": trigger, "responses": list(responses)}
    httpx.post(f"{fake.url}/_fake/realtime/script", json=body, timeout=10).raise_for_status()


def upstream_events(fake: Proc, type_: str | None = None) -> list[Frame]:
    params = {"type": type_} if type_ else {}
    response = httpx.get(f"{fake.url}/_fake/realtime/events", params=params, timeout=10)
    return [item["event"] for item in response.json()["events"]]


def service_events(http: httpx.Client, session_id: str) -> list[Frame]:
    events = http.get("/v1/events", params={"type": "realtime.*", "limit": 1000}).json()["events"]
    return [e for e in events if e["session_id"] == session_id]


def open_session(base: str, *, stalled: bool = False, **params: Any) -> ClientConnection:
    """A text-modality session; `stalled=True`: a client that reads as little as it can."""
    sock = stalled_socket(base) if stalled else None
    params.setdefault("modality", "text")
    return connect(
        ws_url(base, "/v1/realtime", **params),
        open_timeout=10,
        close_timeout=5,
        max_size=None,
        max_queue=1 if stalled else 64,
        sock=sock,
    )


def send(ws: ClientConnection, type_: str, **fields: Any) -> None:
    ws.send(json.dumps({"type": type_, **fields}))


def until(type_: str, **match: Any) -> Callable[[Frame], bool]:
    return lambda f: f["type"] == type_ and all(f.get(k) == v for k, v in match.items())


def text_of(frames: list[Frame]) -> str:
    return "".join(f["delta"] for f in frames if f["type"] == "text.delta")


def closed_by_server(ws: ClientConnection, timeout: float = 30.0) -> tuple[list[Frame], Any]:
    """Read every frame left, then return them and the server's close frame."""
    frames: list[Frame] = []
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            frames.append(json.loads(ws.recv(timeout=timeout)))
    return frames, closed.value.rcvd


def test_session_commands_an_agent_and_reports_its_task(
    rt_service: Proc, rt_fake: Proc, http: httpx.Client
) -> None:
    """Tool calls run on the AgentManager; the task's end reaches the client and the model."""
    name, ask = unique("coder"), unique("build me a coder")
    script(
        rt_fake,
        ask,
        {"tool_calls": [{"name": "create_agent", "arguments": {"name": name, "kind": "coder"}}]},
        {
            "tool_calls": [
                {
                    "name": "command_agent",
                    "arguments": {"name": name, "prompt": "write hello.txt", "wait_s": 60},
                }
            ]
        },
        {"text": "I asked the coder to start."},
        {"text": "The coder is done."},
    )
    with open_session(rt_service.url) as ws:
        session = recv_json(ws)
        assert session["type"] == "session" and session["model"] == "gpt-realtime"
        assert "command_agent" in session["tools"] and session["limits"]["max_session_s"] > 0
        send(ws, "input_text", text=ask)
        frames = recv_until(ws, until("task.finished"))
        finished = [f for f in frames if f["type"] == "tool_call.finished"]
        assert [f["name"] for f in finished] == ["create_agent", "command_agent"]
        assert not any(f["is_error"] for f in finished), finished
        task_id = finished[1]["task_id"]
        assert finished[1]["agent"] == name and task_id
        assert "[task update]" in finished[1]["output"]
        notice = frames[-1]
        assert notice["task_id"] == task_id and notice["state"] == "succeeded"
        assert notice["result"].startswith("echo:")
        text = recv_until(ws, until("response.done", status="completed"))
        assert text_of(text) == "The coder is done."
        send(ws, "close")
        _, close = closed_by_server(ws)
        assert close.code == 1000
    agent = http.get(f"/v1/agents/{name}").json()
    assert agent["kind"] == "coder" and agent["tasks_total"] == 1
    assert wait_task(http, task_id)["state"] == "succeeded"

    update = upstream_events(rt_fake, "session.update")[-1]["session"]
    assert update["type"] == "realtime" and update["output_modalities"] == ["text"]
    tools = {t["name"]: t for t in update["tools"]}
    assert tools["command_agent"]["type"] == "function"
    assert "wait_s" not in tools["command_agent"]["parameters"]["properties"]
    assert "orchestrator" in update["instructions"]
    items = [e["item"] for e in upstream_events(rt_fake, "conversation.item.create")]
    outputs = [i for i in items if i["type"] == "function_call_output"]
    assert any(task_id in o["output"] for o in outputs)
    notices = [i["content"][0]["text"] for i in items if i.get("role") == "system"]
    assert any(task_id in n and "succeeded" in n and "echo:" in n for n in notices), notices
    headers = httpx.get(f"{rt_fake.url}/_fake/realtime/connections").json()["connections"][-1]
    assert headers["headers"]["authorization"] == "<redacted:present>"

    events = service_events(http, session["session_id"])
    wait_until(
        lambda: any(
            e["type"] == "realtime.session.ended"
            for e in service_events(http, session["session_id"])
        ),
        what="the session's end event",
    )
    events = service_events(http, session["session_id"])
    types = [e["type"] for e in events]
    assert types[0] == "realtime.session.started" and types.count("realtime.tool_call") == 2
    ended = events[-1]["payload"]
    assert ended["outcome"] == "client_closed" and ended["tasks_started"] == [task_id]
    assert ended["cost_usd"] > 0 and ended["usage"]["input_tokens"] > 0
    by_model = http.get("/v1/costs").json()["by_model"]
    assert any(m["model"] == "gpt-realtime" and m["cost_usd"] > 0 for m in by_model)
    metrics = http.get("/metrics").text
    assert 'bigthree_realtime_tool_calls_total{outcome="ok",tool="command_agent"} 1.0' in metrics
    assert 'bigthree_realtime_sessions_total{reason="client_closed"}' in metrics


def test_cancel_interrupts_the_response(rt_service: Proc, rt_fake: Proc) -> None:
    """`cancel` mid-response ends it as cancelled; the session then answers the next turn."""
    ask = unique("talk slowly")
    script(rt_fake, ask, {"text": "one two three four five", "hold": True})
    with open_session(rt_service.url) as ws:
        recv_json(ws)
        send(ws, "input_text", text=ask)
        recv_until(ws, until("text.delta"))
        send(ws, "cancel")
        done = recv_until(ws, until("response.done"))[-1]
        assert done["status"] == "cancelled"
        assert [e for e in upstream_events(rt_fake, "response.cancel")]
        send(ws, "input_text", text="and now?")
        frames = recv_until(ws, until("response.done"))
        assert frames[-1]["status"] == "completed"
        assert text_of(frames) == "echo: and now?"


def test_audio_turn_round_trip_with_beta_event_names(rt_service: Proc, rt_fake: Proc) -> None:
    """input_audio + commit reach upstream; audio and transcript deltas (beta names) come back."""
    script(rt_fake, "", {"transcript": "hello there", "audio_chunks": 3, "beta_names": True})
    chunk = base64.b64encode(b"\x00\x01" * 2400).decode()
    with open_session(rt_service.url, modality="audio") as ws:
        assert recv_json(ws)["modality"] == "audio"
        send(ws, "input_audio", audio=chunk)
        send(ws, "input_audio", audio=chunk)
        send(ws, "commit")
        frames = recv_until(ws, until("response.done"))
    audio = [f for f in frames if f["type"] == "audio.delta"]
    assert len(audio) == 3 and all(base64.b64decode(f["audio"]) for f in audio)
    assert "".join(f["delta"] for f in frames if f["type"] == "transcript.delta") == "hello there"
    appended = upstream_events(rt_fake, "input_audio_buffer.append")
    assert appended[-1]["audio"] == f"<{len(chunk)} base64 chars>"
    assert upstream_events(rt_fake, "input_audio_buffer.commit")
    update = upstream_events(rt_fake, "session.update")[-1]["session"]
    assert update["output_modalities"] == ["audio"]
    assert update["audio"]["input"]["turn_detection"] is None


def test_upstream_error_is_relayed_without_closing(rt_service: Proc, rt_fake: Proc) -> None:
    """An upstream `error` event reaches the client and the session keeps working."""
    ask = unique("provoke an error")
    error = {"type": "invalid_request_error", "code": "scripted_failure", "message": "boom"}
    script(rt_fake, ask, {"error": error})
    with open_session(rt_service.url) as ws:
        recv_json(ws)
        send(ws, "input_text", text=ask)
        relayed = recv_until(ws, until("error"))[-1]
        assert relayed["source"] == "upstream"
        assert relayed["error"]["code"] == "scripted_failure"
        assert relayed["error"]["message"] == "boom"
        send(ws, "input_text", text="still there?")
        frames = recv_until(ws, until("response.done"))
        assert text_of(frames) == "echo: still there?"
        send(ws, "bogus")
        assert recv_until(ws, until("error"))[-1]["error"]["type"] == "invalid_message"
        send(ws, "ping")
        assert recv_until(ws, until("pong"))


def test_upstream_drop_closes_the_client_with_4502(
    rt_service: Proc, rt_fake: Proc, http: httpx.Client
) -> None:
    """Upstream closing mid-response: an `upstream_closed` error, then close code 4502."""
    ask = unique("drop me")
    script(rt_fake, ask, {"text": "a partial answer", "close_code": 1011})
    with open_session(rt_service.url) as ws:
        session = recv_json(ws)
        send(ws, "input_text", text=ask)
        frames, close = closed_by_server(ws)
    assert frames[-1]["type"] == "error"
    assert frames[-1]["error"]["type"] == "upstream_closed" and frames[-1]["error"]["reconnect"]
    assert close.code == 4502 and close.reason == "upstream closed: reconnect"
    wait_until(
        lambda: any(
            e["type"] == "realtime.session.ended"
            for e in service_events(http, session["session_id"])
        ),
        what="the session's end event",
    )
    ended = service_events(http, session["session_id"])[-1]["payload"]
    assert ended["outcome"] == "upstream_closed" and ended["close_code"] == 4502


def test_open_breaker_refuses_the_session_with_4503(rt_service: Proc, http: httpx.Client) -> None:
    """The upstream connect goes through the openai breaker: open, it refuses with 4503."""
    forced = http.post("/v1/providers/openai/breaker", json={"action": "force_open"})
    assert forced.status_code == 200, forced.text
    try:
        with open_session(rt_service.url) as ws:
            frames, close = closed_by_server(ws)
        assert frames[-1]["error"]["type"] == "upstream_unavailable"
        assert "circuit" in frames[-1]["error"]["message"]
        assert close.code == 4503
    finally:
        http.post("/v1/providers/openai/breaker", json={"action": "reset"})
    metrics = http.get("/metrics").text
    assert 'bigthree_realtime_upstream_errors_total{kind="connect"} 1.0' in metrics


def test_slow_client_is_dropped_without_affecting_another_session(
    tmp_path_factory: pytest.TempPathFactory, rt_fake: Proc
) -> None:
    """A client that stops reading is closed with 4008; a concurrent session is unaffected."""
    env = {**provider_env(rt_fake.url), "BIGTHREE_REALTIME_CLIENT_QUEUE_SIZE": "8"}
    proc = start_service(tmp_path_factory.mktemp("rt-slow"), env=env)
    flood, hello = unique("flood me"), unique("hello")
    script(rt_fake, flood, {"audio_chunks": 400, "audio_chunk_bytes": 48_000})
    try:
        with open_session(proc.url, stalled=True) as stalled, open_session(proc.url) as healthy:
            send(stalled, "input_text", text=flood)
            recv_json(healthy)
            send(healthy, "input_text", text=hello)
            frames = recv_until(healthy, until("response.done"))
            assert frames[-1]["status"] == "completed"
            assert text_of(frames) == f"echo: {hello}"
            _, close = closed_by_server(stalled, timeout=60)
            assert close.code == 4008 and "too slow" in close.reason
            send(healthy, "input_text", text="still fine?")
            assert recv_until(healthy, until("response.done"))[-1]["status"] == "completed"
        metrics = httpx.get(proc.url + "/metrics").text
        assert 'bigthree_ws_dropped_total{reason="slow_consumer",stream="realtime"} 1.0' in metrics
        assert 'bigthree_realtime_sessions_total{reason="slow_client"} 1.0' in metrics
    finally:
        proc.stop()


def test_sessions_are_capped_in_number_and_length(
    tmp_path_factory: pytest.TempPathFactory, rt_fake: Proc
) -> None:
    """Over BIGTHREE_REALTIME_MAX_SESSIONS: 1013; at BIGTHREE_REALTIME_MAX_SESSION_S: 4001."""
    env = {
        **provider_env(rt_fake.url),
        "BIGTHREE_REALTIME_MAX_SESSIONS": "1",
        "BIGTHREE_REALTIME_MAX_SESSION_S": "1.5",
    }
    proc = start_service(tmp_path_factory.mktemp("rt-caps"), env=env)
    try:
        with open_session(proc.url) as first:
            assert recv_json(first)["limits"]["max_session_s"] == 1.5
            with open_session(proc.url) as second:
                frames, close = closed_by_server(second)
            assert close.code == 1013 and frames[-1]["error"]["type"] == "at_capacity"
            frames, close = closed_by_server(first)
        assert close.code == 4001 and "reconnect" in close.reason
        assert frames[-1]["error"]["type"] == "session_time_limit"
        metrics = httpx.get(proc.url + "/metrics").text
        assert 'bigthree_realtime_sessions_total{reason="time_limit"} 1.0' in metrics
        assert 'bigthree_realtime_sessions_total{reason="at_capacity"} 1.0' in metrics
        assert 'bigthree_ws_connections{stream="realtime"} 0.0' in metrics
    finally:
        proc.stop()


def test_unauthenticated_connect_is_refused(auth_service: Proc) -> None:
    """Without a valid key the handshake is refused with HTTP 403; `?token=` is accepted."""
    for params in ({}, {"token": "wrong-key-0123456789"}):
        with pytest.raises(InvalidStatus) as refused:
            open_session(auth_service.url, **params)
        assert refused.value.response.status_code == 403
    with open_session(auth_service.url, token=AUTH_KEY) as ws:
        assert recv_json(ws)["type"] == "session"
