"""Process lifecycle: crash recovery on restart, and the SIGTERM drain."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from app.fake_upstream.client import FakeUpstreamClient
from tests.conftest import provider_env, unique
from tests.support.api import create_agent, open_events, recv_until, submit, wait_task
from tests.support.procs import Proc, running, start_service, wait_until


def on_one_data_dir(tmp_path: Path, upstream_url: str, **settings: str) -> Callable[[], Proc]:
    """Starts the service on the same data directory each time it is called: a restart."""
    env = {**provider_env(upstream_url), **settings}
    return lambda: start_service(tmp_path, env=env, data_dir=tmp_path / "data")


def test_restart_requeues_queued_and_interrupts_running(
    tmp_path, fake_upstream, fake: FakeUpstreamClient
) -> None:
    """After a crash, a task that was running is `interrupted`; one that was queued runs."""
    model = unique("model")
    service = on_one_data_dir(tmp_path, fake_upstream.url)
    first = service()
    try:
        with httpx.Client(base_url=first.url, timeout=10) as http:
            create_agent(http, "survivor", model=model)
            fake.script(model, [{"latency_s": 60}])
            running = submit(http, "survivor", "long job")
            queued = submit(http, "survivor", "next job")
            wait_until(
                lambda: len(fake.requests(model=model)) == 1, what="the call to reach upstream"
            )
    finally:
        first.signal(signal.SIGKILL)  # a crash: no drain, no cleanup
        first.wait()
    second = service()
    try:
        with httpx.Client(base_url=second.url, timeout=10) as http:
            lost = http.get(f"/v1/tasks/{running['id']}").json()
            assert lost["state"] == "interrupted"
            assert "submit it again" in lost["error"]["message"]
            resumed = wait_task(http, queued["id"])
            assert resumed["state"] == "succeeded" and resumed["result"] == "echo: next job"
            events = http.get("/v1/events", params={"agent": "survivor"}).json()["events"]
            recovered = {e["type"]: e["task_id"] for e in events if e["payload"].get("recovered")}
            assert recovered == {"task.interrupted": running["id"], "task.requeued": queued["id"]}
            agent = http.get("/v1/agents/survivor").json()
            assert agent["state"] in {"idle", "busy"}
    finally:
        second.stop()


def test_sigterm_drains_then_exits(tmp_path, fake_upstream, fake: FakeUpstreamClient) -> None:
    """SIGTERM: /ready and new tasks answer 503, the running task finishes, streams close 1001."""
    model = unique("model")
    env = {**provider_env(fake_upstream.url), "BIGTHREE_DRAIN_GRACE_S": "20"}
    proc = start_service(tmp_path, env=env)
    with httpx.Client(base_url=proc.url, timeout=10) as http:
        create_agent(http, "drainer", model=model)
        fake.script(model, [{"latency_s": 2.0}])
        task = submit(http, "drainer", "finish me")
        wait_until(lambda: len(fake.requests(model=model)) == 1, what="the call to reach upstream")
        with open_events(proc.url, type="task.*") as ws:
            proc.signal(signal.SIGTERM)
            wait_until(
                lambda: http.get("/ready").status_code == 503, what="/ready to report draining"
            )
            ready = http.get("/ready").json()
            assert ready["status"] == "not_ready" and ready["checks"]["draining"] == "yes"
            refused = http.post("/v1/agents/drainer/tasks", json={"prompt": "too late"})
            assert refused.status_code == 503 and refused.json()["error"]["type"] == "draining"
            assert refused.headers["retry-after"]
            got = recv_until(ws, lambda e: e["type"] == "task.succeeded", timeout=20)
            assert got[-1]["task_id"] == task["id"]
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    ws.recv(timeout=20)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert proc.wait(timeout=30) == 0


def test_sigterm_past_grace_marks_running_interrupted(
    tmp_path, fake_upstream, fake: FakeUpstreamClient
) -> None:
    """A task still running when the grace period ends is `interrupted`, queued ones stay queued."""
    model = unique("model")
    service = on_one_data_dir(tmp_path, fake_upstream.url, BIGTHREE_DRAIN_GRACE_S="0.2")
    proc = service()
    with httpx.Client(base_url=proc.url, timeout=10) as http:
        create_agent(http, "stubborn", model=model)
        fake.script(model, [{"latency_s": 60}])
        running = submit(http, "stubborn", "never finishes")
        queued = submit(http, "stubborn", "waits its turn")
        wait_until(lambda: len(fake.requests(model=model)) == 1, what="the call to reach upstream")
        proc.signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    again = service()
    try:
        with httpx.Client(base_url=again.url, timeout=10) as http:
            assert http.get(f"/v1/tasks/{running['id']}").json()["state"] == "interrupted"
            assert wait_task(http, queued["id"])["state"] == "succeeded"
    finally:
        again.stop()


def test_chat_turns_outlive_a_restart(tmp_path, fake_upstream, fake: FakeUpstreamClient) -> None:
    """After a restart, a chat agent's next task still sends its earlier turns (read back
    from the store), oldest first."""
    model = unique("model")
    service = on_one_data_dir(tmp_path, fake_upstream.url)
    with running(service()) as first, httpx.Client(base_url=first.url, timeout=10) as http:
        create_agent(http, "rememberer", model=model)
        for prompt in ("first question", "second question"):
            assert wait_task(http, submit(http, "rememberer", prompt)["id"])["state"] == (
                "succeeded"
            )
    with running(service()) as second, httpx.Client(base_url=second.url, timeout=10) as http:
        wait_task(http, submit(http, "rememberer", "third question")["id"])
    sent = fake.requests(model=model)[-1].body["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("user", "first question"),
        ("assistant", "echo: first question"),
        ("user", "second question"),
        ("assistant", "echo: second question"),
        ("user", "third question"),
    ]
