"""The headers a status promises: Retry-After on every 429 and 503 the service sends,
WWW-Authenticate on 401, Allow listing every method of a path on 405 and OPTIONS."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from app.fake_upstream.client import FakeUpstreamClient
from tests.conftest import provider_env, unique
from tests.reliability.conftest import AUTH
from tests.support.api import create_agent, submit, wait_task
from tests.support.procs import Proc, start_service, wait_until


def retry_after(response: httpx.Response) -> int:
    value = response.headers.get("retry-after")
    assert value is not None and value.isdigit() and int(value) >= 1, response.headers
    return int(value)


def test_401_says_how_to_authenticate(keyed_service: Proc) -> None:
    """A missing or wrong key is 401 with WWW-Authenticate: Bearer."""
    for headers in ({}, {"Authorization": "Bearer not-the-key-0123456789"}):
        response = httpx.get(keyed_service.url + "/v1/agents", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_allow_lists_every_method_of_a_path(keyed_service: Proc) -> None:
    """GET and POST share /v1/agents: 405 and OPTIONS both name them all."""
    with httpx.Client(base_url=keyed_service.url, headers=AUTH) as http:
        put = http.put("/v1/agents")
        assert put.status_code == 405
        assert set(put.headers["allow"].split(", ")) == {"GET", "POST", "OPTIONS"}
        options = http.options("/v1/agents/some-agent")
        assert options.status_code == 204
        assert set(options.headers["allow"].split(", ")) == {"GET", "DELETE", "OPTIONS"}


def test_every_429_and_503_carries_retry_after(
    tmp_path: Path, fake_upstream: Proc, fake: FakeUpstreamClient
) -> None:
    """Agent limit, full agent queue, draining submit and /ready while draining."""
    env = {
        **provider_env(fake_upstream.url),
        "BIGTHREE_MAX_AGENTS": "1",
        "BIGTHREE_MAX_QUEUED_TASKS_PER_AGENT": "1",
        "BIGTHREE_DRAIN_GRACE_S": "30",
    }
    proc = start_service(tmp_path, env=env)
    model = unique("slow")
    try:
        fake.script(model, [{"latency_s": 30, "repeat": -1}])
        with httpx.Client(base_url=proc.url, timeout=30) as http:
            agent = unique("only")
            create_agent(http, agent, model=model)
            over = http.post(
                "/v1/agents", json={"name": unique("more"), "provider": "openai", "model": "m"}
            )
            assert over.status_code == 429
            retry_after(over)
            running = submit(http, agent, "runs")
            wait_task(http, running["id"], {"running"})
            submit(http, agent, "queued")
            full = http.post(f"/v1/agents/{agent}/tasks", json={"prompt": "no room"})
            assert full.status_code == 429
            retry_after(full)
            proc.signal(signal.SIGTERM)  # drains: the running task holds the server up
            wait_until(lambda: http.get("/ready").status_code == 503, what="/ready to say 503")
            ready = http.get("/ready")
            assert ready.json()["status"] == "not_ready"
            retry_after(ready)
            draining = http.post(f"/v1/agents/{agent}/tasks", json={"prompt": "too late"})
            assert (draining.status_code, draining.json()["error"]["type"]) == (503, "draining")
            retry_after(draining)
            proc.signal(signal.SIGTERM)  # a second signal skips the wait
            assert proc.wait(timeout=30) == 0
    finally:
        proc.stop()
