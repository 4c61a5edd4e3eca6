"""/health, /ready, /metrics and the logs, as an operator sees them."""

from __future__ import annotations

import json

import httpx

from app.fake_upstream.client import FakeUpstreamClient
from tests.conftest import AUTH_KEY, provider_env, unique
from tests.support.api import create_agent, submit, wait_task
from tests.support.procs import start_service


def test_health_and_ready(client: httpx.Client) -> None:
    """/health is always ok; /ready reports the store check and that we are not draining."""
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"store": "ok", "draining": "no"}


def test_metrics_count_http_tasks_and_provider_calls(
    client: httpx.Client, fake: FakeUpstreamClient
) -> None:
    """After traffic, /metrics shows HTTP, task, LLM and event series with bounded labels."""
    name, model = unique("metered"), unique("model")
    create_agent(client, name, model=model)
    fake.script(model, [{"status": 500, "error": {"message": "boom"}}])
    wait_task(client, submit(client, name, "count me")["id"])
    text = client.get("/metrics").text
    assert 'http_requests_total{handler="/v1/agents",method="POST",status="2xx"}' in text
    assert 'bigthree_tasks_total{kind="chat",outcome="succeeded"}' in text
    failed = f'model="{model}",outcome="server_error",provider="openai"'
    assert f"bigthree_llm_requests_total{{{failed}}} 1.0" in text
    assert (
        f'bigthree_llm_requests_total{{model="{model}",outcome="success",provider="openai"}} 1.0'
        in text
    )
    assert 'bigthree_llm_retries_total{provider="openai",reason="server_error"}' in text
    assert "bigthree_llm_request_duration_seconds_bucket" in text
    assert 'bigthree_llm_tokens_total{direction="input"' in text
    assert 'bigthree_events_total{origin="internal"}' in text
    assert "bigthree_tasks_queued 0.0" in text


def test_logs_are_json_with_request_ids_and_no_secrets(tmp_path, fake_upstream) -> None:
    """Log lines are JSON, carry request/agent/task ids, and never contain keys or tokens."""
    secret = "sk-live-abcdefghijklmnop1234"
    env = {
        **provider_env(fake_upstream.url),
        "OPENAI_API_KEY": secret,
        "BIGTHREE_API_KEYS": AUTH_KEY,
    }
    proc = start_service(tmp_path, env=env)
    try:
        headers = {"Authorization": f"Bearer {AUTH_KEY}", "x-request-id": "req-for-logs"}
        with httpx.Client(base_url=proc.url, headers=headers, timeout=10) as http:
            create_agent(http, "logger", model=unique("model"))
            task = submit(http, "logger", f"please echo {secret}")
            wait_task(http, task["id"])
            http.get("/v1/agents/nobody")
    finally:
        proc.stop()
    logs = proc.logs()
    assert secret not in logs and AUTH_KEY not in logs
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert lines and all("timestamp" in line and "level" in line for line in lines)
    requests = [line for line in lines if line["event"] == "request"]
    assert any(line["request_id"] == "req-for-logs" and line["status"] == 404 for line in requests)
    finished = [line for line in lines if line["event"] == "task_finished"]
    assert finished and finished[0]["task_id"] == task["id"] and finished[0]["agent"] == "logger"
    # the agent's worker outlives the request that woke it: its lines carry no request's id
    assert "request_id" not in finished[0]
