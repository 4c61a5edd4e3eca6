"""Agents and tasks over real HTTP against a real service and the real fake upstream."""

from __future__ import annotations

import itertools
from datetime import datetime

import httpx
import pytest

from app.fake_upstream.client import FakeUpstreamClient
from tests.conftest import unique
from tests.support.api import create_agent, submit, wait_task
from tests.support.chaos import breaker_snapshot


def test_create_get_list_delete_agent(client: httpx.Client) -> None:
    """An agent can be created, read, listed and deleted; its name is then free again."""
    name = unique("alpha")
    agent = create_agent(client, name, instructions="be brief")
    assert agent["name"] == name and agent["kind"] == "chat" and agent["state"] == "idle"
    assert agent["provider"] == "openai" and agent["instructions"] == "be brief"
    assert client.get(f"/v1/agents/{name}").json()["id"] == agent["id"]
    assert name in [a["name"] for a in client.get("/v1/agents").json()["agents"]]
    assert client.delete(f"/v1/agents/{name}").status_code == 204
    missing = client.get(f"/v1/agents/{name}")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found"
    assert create_agent(client, name)["id"] != agent["id"]


def test_duplicate_name_is_409(client: httpx.Client) -> None:
    """A second live agent with the same name is refused with 409 conflict."""
    name = unique("dup")
    create_agent(client, name)
    response = client.post("/v1/agents", json={"name": name, "model": "gpt-4o-mini"})
    assert response.status_code == 409
    assert response.json()["error"]["type"] == "conflict"


def test_bad_agent_input_is_422_with_fields(client: httpx.Client) -> None:
    """Bad names, kinds, providers and unknown fields get 422 naming the field."""
    cases = [
        {"name": "Has Spaces", "model": "m"},
        {"name": "x" * 65, "model": "m"},
        {"name": unique("k"), "kind": "toaster", "model": "m"},
        {"name": unique("p"), "provider": "acme", "model": "m"},
        {"name": unique("f"), "model": "m", "surprise": 1},
        {"name": unique("m"), "model": "bad model name!"},
    ]
    for body in cases:
        response = client.post("/v1/agents", json=body)
        assert response.status_code == 422, body
        error = response.json()["error"]
        assert error["type"] == "validation_error" and error["fields"], body
    bad_name = client.post("/v1/agents", json={"name": "-Bad", "model": "m"}).json()["error"]
    assert bad_name["fields"][0]["message"] == (
        "an agent name has lowercase letters, digits, '-' and '_', 1–64 characters, "  # noqa: RUF001
        "starting and ending with a letter or digit"
    )


def test_malformed_json_and_huge_body(client: httpx.Client) -> None:
    """Malformed JSON is a 422 that says so; a body over the limit is a 413."""
    response = client.post(
        "/v1/agents", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "not valid JSON" in response.json()["error"]["message"]
    huge = client.post(
        "/v1/agents", content=b"x" * 2_000_000, headers={"content-type": "application/json"}
    )
    assert huge.status_code == 413
    assert huge.json()["error"]["type"] == "payload_too_large"


def test_unknown_routes_and_ids_give_problem_json(client: httpx.Client) -> None:
    """Unknown routes, agents and tasks answer 404 in the error shape, never a bare 500."""
    for path in ("/nope", "/v1/agents/ghost-agent", "/v1/tasks/0123abcd", "/v1/agents/ghost/tasks"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["type"] == "not_found", path
    assert client.get("/v1/tasks/not-hex!").status_code == 404


def test_task_runs_to_a_result_with_usage_and_timings(client: httpx.Client) -> None:
    """A task is accepted with 202, runs on the provider, and ends with result, usage, times."""
    name = unique("worker")
    create_agent(client, name)
    task = submit(client, name, "hello there")
    assert task["state"] in {"queued", "running"} and task["id"]
    done = wait_task(client, task["id"])
    assert done["state"] == "succeeded", done
    assert done["result"] == "echo: hello there"
    assert done["usage"]["input_tokens"] > 0 and done["usage"]["output_tokens"] > 0
    assert done["attempts"] == 1 and done["error"] is None
    started, finished = (datetime.fromisoformat(done[k]) for k in ("started_at", "finished_at"))
    assert done["run_s"] == pytest.approx((finished - started).total_seconds(), abs=1e-3)
    listed = client.get(f"/v1/agents/{name}/tasks").json()["tasks"]
    assert [t["id"] for t in listed] == [task["id"]]
    agent = client.get(f"/v1/agents/{name}").json()
    assert (
        agent["tasks_total"] == 1
        and agent["usage"]["input_tokens"] == done["usage"]["input_tokens"]
    )


def test_chat_keeps_earlier_turns_as_context(
    client: httpx.Client, fake: FakeUpstreamClient
) -> None:
    """A chat agent's second task sends the first exchange to the model, with instructions."""
    name, model = unique("chatty"), unique("model")
    create_agent(client, name, model=model, instructions="you are terse")
    wait_task(client, submit(client, name, "first question")["id"])
    wait_task(client, submit(client, name, "second question")["id"])
    last = fake.requests(model=model)[-1].body["messages"]
    assert [m["role"] for m in last] == ["system", "user", "assistant", "user"]
    assert last[1]["content"] == "first question"
    assert last[2]["content"] == "echo: first question"


def test_bad_task_input(client: httpx.Client) -> None:
    """Empty prompts, over-long timeouts and unknown agents are refused clearly."""
    name = unique("picky")
    create_agent(client, name)
    assert client.post(f"/v1/agents/{name}/tasks", json={"prompt": ""}).status_code == 422
    too_long = client.post(f"/v1/agents/{name}/tasks", json={"prompt": "x", "timeout_s": 10**6})
    assert too_long.status_code == 422
    assert "timeout_s" in too_long.json()["error"]["message"]
    assert (
        client.post(f"/v1/agents/{name}/tasks", json={"prompt": "x", "timeout_s": -1}).status_code
        == 422
    )
    assert client.post("/v1/agents/nobody-here/tasks", json={"prompt": "x"}).status_code == 404


def test_provider_failure_is_retried_then_reported(
    client: httpx.Client, fake: FakeUpstreamClient
) -> None:
    """A persistent 500 is retried up to the attempt limit and the task fails with a typed error."""
    name, model = unique("unlucky"), unique("model")
    create_agent(client, name, model=model)
    fake.script(model, [{"status": 500, "error": {"message": "boom"}, "repeat": -1}])
    done = wait_task(client, submit(client, name, "hi")["id"])
    assert done["state"] == "failed"
    assert done["error"]["type"] == "server_error"
    assert "boom" in done["error"]["message"]
    assert done["attempts"] == 3
    assert len(fake.requests(model=model)) == 3


def test_rate_limit_is_retried_after_hint(client: httpx.Client, fake: FakeUpstreamClient) -> None:
    """A 429 with retry-after-ms is retried and the task then succeeds."""
    name, model = unique("patient"), unique("model")
    create_agent(client, name, model=model)
    fake.script(
        model,
        [{"status": 429, "headers": {"retry-after-ms": "50"}, "error": {"message": "slow down"}}],
    )
    done = wait_task(client, submit(client, name, "hi")["id"])
    assert done["state"] == "succeeded" and done["attempts"] == 2


def test_quota_exhausted_is_not_retried(client: httpx.Client, fake: FakeUpstreamClient) -> None:
    """`insufficient_quota` fails the task at once with a readable, typed error."""
    name, model = unique("broke"), unique("model")
    create_agent(client, name, model=model)
    fake.script(
        model,
        [
            {
                "status": 429,
                "error": {
                    "code": "insufficient_quota",
                    "type": "insufficient_quota",
                    "message": "You exceeded your current quota",
                },
                "repeat": -1,
            }
        ],
    )
    done = wait_task(client, submit(client, name, "hi")["id"])
    assert done["state"] == "failed" and done["error"]["type"] == "quota_exhausted"
    assert done["attempts"] == 1 and len(fake.requests(model=model)) == 1


def test_deadline_times_out_a_slow_task(client: httpx.Client, fake: FakeUpstreamClient) -> None:
    """A task whose provider is slower than its timeout ends `timed_out`."""
    name, model = unique("slowpoke"), unique("model")
    create_agent(client, name, model=model)
    fake.script(model, [{"latency_s": 30, "repeat": -1}])
    done = wait_task(client, submit(client, name, "hi", timeout_s=0.5)["id"])
    assert done["state"] == "timed_out"
    assert "0.5s deadline" in done["error"]["message"]
    # the cut-off call counts as one timed-out call on its breaker, every time
    breaker = breaker_snapshot(client, "openai", f"openai/{model}")
    assert (breaker["calls"], breaker["failed_calls"]) == (1, 1), breaker


def test_cancel_running_and_queued_tasks(client: httpx.Client, fake: FakeUpstreamClient) -> None:
    """Running and queued tasks can be cancelled; a finished one answers 409."""
    name, model = unique("cancel"), unique("model")
    create_agent(client, name, model=model)
    fake.script(model, [{"latency_s": 30, "repeat": -1}])
    first = submit(client, name, "one")
    second = submit(client, name, "two")
    wait_task(client, first["id"], {"running"})
    assert client.get(f"/v1/tasks/{second['id']}").json()["state"] == "queued"
    queued = client.post(f"/v1/tasks/{second['id']}/cancel")
    assert queued.status_code == 200 and queued.json()["state"] == "cancelled"
    running = client.post(f"/v1/tasks/{first['id']}/cancel")
    assert running.status_code == 200 and running.json()["state"] == "cancelled"
    again = client.post(f"/v1/tasks/{first['id']}/cancel")
    assert again.status_code == 409 and again.json()["error"]["type"] == "conflict"


def test_one_task_at_a_time_per_agent_in_fifo_order(
    client: httpx.Client, fake: FakeUpstreamClient
) -> None:
    """An agent runs its tasks one by one in submission order."""
    name, model = unique("fifo"), unique("model")
    create_agent(client, name, model=model)
    fake.script(model, [{"latency_s": 0.1, "repeat": -1}])
    ids = [submit(client, name, f"task {i}")["id"] for i in range(4)]
    done = [wait_task(client, task_id) for task_id in ids]
    assert [t["state"] for t in done] == ["succeeded"] * 4, [t["error"] for t in done]
    for earlier, later in itertools.pairwise(done):
        assert earlier["finished_at"] <= later["started_at"]
    prompts = [r.body["messages"][-1]["content"] for r in fake.requests(model=model)]
    assert prompts == [f"task {i}" for i in range(4)]


def test_request_id_is_echoed(client: httpx.Client) -> None:
    """Every response carries x-request-id; a sane client-supplied id is kept."""
    assert client.get("/health").headers["x-request-id"]
    echoed = client.get("/v1/agents", headers={"x-request-id": "trace-123"})
    assert echoed.headers["x-request-id"] == "trace-123"
    error = client.get("/v1/agents/ghost", headers={"x-request-id": "trace-404"})
    assert error.json()["error"]["request_id"] == "trace-404"
