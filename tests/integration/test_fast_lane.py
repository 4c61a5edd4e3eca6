"""The fast lane (app/core/fast_lane.py) answers its routes exactly as the FastAPI routes
do: the same bodies, statuses, error shapes, headers and metrics, and whatever it does not
take (a query string, a bad body, a chunked body, a wrong key) still reaches FastAPI."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.responses import Response
from starlette.routing import Route

from app.core.fast_lane import FastLane, LaneEntry, LaneRequest
from tests.conftest import AUTH_KEY, unique
from tests.support.api import create_agent, submit, wait_task


def _counted(client: httpx.Client, handler: str, method: str, status: str) -> float:
    text = client.get("/metrics").text
    pattern = (
        rf'^http_requests_total\{{handler="{re.escape(handler)}",method="{method}",'
        rf'status="{status}"\}} (\S+)$'
    )
    found = re.search(pattern, text, flags=re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_task_read_is_the_same_through_the_lane_and_fastapi(client: httpx.Client) -> None:
    """A task read with no query string (the lane) and with a parameter the lane does not
    take (FastAPI's route) answer the same task; both are counted under the route's
    template."""
    agent = unique("lane")
    create_agent(client, agent)
    task = wait_task(client, submit(client, agent, "hello lane")["id"])
    before = _counted(client, "/v1/tasks/{task_id}", "GET", "2xx")
    lane = client.get(f"/v1/tasks/{task['id']}")
    routed = client.get(f"/v1/tasks/{task['id']}", params={"wait": 0, "via": "route"})
    assert lane.status_code == routed.status_code == 200
    assert lane.json() == routed.json() == task
    assert lane.headers["content-type"] == routed.headers["content-type"] == "application/json"
    assert lane.headers["x-request-id"] and lane.headers["x-request-id"] != routed.headers.get(
        "x-request-id"
    )
    assert _counted(client, "/v1/tasks/{task_id}", "GET", "2xx") == before + 2


def test_waits_answer_the_same_through_the_lane_and_fastapi(client: httpx.Client) -> None:
    """`?wait=` alone (the lane) and with a parameter the lane does not take (FastAPI's
    route): a submit held to its end answers 200 with the result either way, a held read
    of it 200 with the same task, and a wait past the maximum the same 422 problem."""
    agent = unique("lanewait")
    create_agent(client, agent)
    lane = client.post(f"/v1/agents/{agent}/tasks?wait=30", json={"prompt": "held"})
    routed = client.post(f"/v1/agents/{agent}/tasks?wait=30&via=route", json={"prompt": "held"})
    assert lane.status_code == routed.status_code == 200
    assert lane.json()["state"] == routed.json()["state"] == "succeeded"
    assert lane.json()["result"] == routed.json()["result"] == "echo: held"
    task_id = lane.json()["id"]
    read_lane = client.get(f"/v1/tasks/{task_id}?wait=30")
    read_routed = client.get(f"/v1/tasks/{task_id}?wait=30&via=route")
    assert read_lane.status_code == read_routed.status_code == 200
    assert read_lane.json() == read_routed.json() == lane.json()
    too_long = [
        client.post(f"/v1/agents/{agent}/tasks?wait=61{via}", json={"prompt": "x"})
        for via in ("", "&via=route")
    ]
    assert [r.status_code for r in too_long] == [422, 422]
    assert too_long[0].json()["error"]["message"] == too_long[1].json()["error"]["message"]
    assert client.get(f"/v1/agents/{agent}").json()["tasks_total"] == 2


def test_unknown_and_malformed_task_ids_are_404_problems(client: httpx.Client) -> None:
    for task_id in ("0" * 32, "not-a-task", "x" * 300):
        response = client.get(f"/v1/tasks/{task_id}", headers={"x-request-id": "lane-404"})
        assert response.status_code == 404, task_id
        error = response.json()["error"]
        assert error["type"] == "not_found" and error["request_id"] == "lane-404"


def test_submit_answers_and_refuses_like_the_route(client: httpx.Client) -> None:
    """Accepted submits are 202 tasks; each refusal has the route's problem shape, whether
    the lane raised it (unknown agent) or passed the request on (bad body, bad name, a
    body that is not JSON, a chunked body)."""
    agent = unique("lanesub")
    create_agent(client, agent)
    accepted = client.post(f"/v1/agents/{agent}/tasks", json={"prompt": "hi"})
    assert accepted.status_code == 202 and accepted.json()["state"] in {"queued", "running"}
    assert accepted.json()["agent"] == agent

    nobody = unique("nobody")
    unknown = client.post(
        f"/v1/agents/{nobody}/tasks", json={"prompt": "hi"}, headers={"x-request-id": "r1"}
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["type"] == "not_found"
    assert unknown.json()["error"]["request_id"] == "r1"

    for body in ({"prompt": ""}, {"prompt": "x", "surprise": 1}, {"prompt": 5}, [1]):
        refused = client.post(f"/v1/agents/{agent}/tasks", json=body)
        assert refused.status_code == 422, body
        assert (
            refused.json()["error"]["type"] == "validation_error"
            and refused.json()["error"]["fields"]
        ), body
    malformed = client.post(
        f"/v1/agents/{agent}/tasks",
        content=b'{"prompt": ',
        headers={"content-type": "application/json"},
    )
    assert malformed.status_code == 422
    assert malformed.json()["error"]["message"] == "request body is not valid JSON"
    bad_name = client.post("/v1/agents/Not_Valid/tasks", json={"prompt": "hi"})
    assert bad_name.status_code == 422 and bad_name.json()["error"]["fields"][0]["loc"] == [
        "path",
        "name",
    ]

    def chunks() -> Iterator[bytes]:
        yield b'{"prompt": '
        yield b'"in two chunks"}'

    chunked = client.post(
        f"/v1/agents/{agent}/tasks", content=chunks(), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 202 and chunked.json()["prompt"] == "in two chunks"


def test_posted_events_are_stored_and_refused_like_the_route(client: httpx.Client) -> None:
    kind = f"lane.{unique('ev')}"
    stored = client.post("/v1/events", json={"type": kind, "payload": {"n": 1}})
    assert stored.status_code == 201
    page = client.get("/v1/events", params={"type": kind}).json()["events"]
    assert [e["seq"] for e in page] == [stored.json()["seq"]] and page[0]["payload"] == {"n": 1}
    lone_surrogate = b'{"type": "lane.bad", "payload": {"k": "\\ud800"}}'
    refused = client.post(
        "/v1/events", content=lone_surrogate, headers={"content-type": "application/json"}
    )
    assert refused.status_code == 422 and refused.json()["error"]["type"] == "validation_error"
    as_text = client.post(
        "/v1/events",
        content=json.dumps({"type": kind}).encode(),
        headers={"content-type": "text/plain"},
    )
    assert as_text.status_code == 422


def test_a_wrong_key_reaches_fastapi_and_gets_its_401(auth_service) -> None:
    url = auth_service.url
    good = {"Authorization": f"Bearer {AUTH_KEY}"}
    with httpx.Client(base_url=url, timeout=10.0) as http:
        agent = unique("lanekey")
        assert http.post(
            "/v1/agents", json={"name": agent, "model": "gpt-4o-mini"}, headers=good
        ).is_success
        for path, body in ((f"/v1/agents/{agent}/tasks", {"prompt": "hi"}), ("/v1/events", None)):
            refused = http.post(path, json=body or {"type": "lane.key"})
            assert refused.status_code == 401 and refused.headers["www-authenticate"]
            assert refused.json()["error"]["type"] == "unauthorized"
        task = http.post(f"/v1/agents/{agent}/tasks", json={"prompt": "hi"}, headers=good).json()
        assert http.get(f"/v1/tasks/{task['id']}").status_code == 401
        assert http.get(f"/v1/tasks/{task['id']}", headers=good).json()["id"] == task["id"]


def test_a_lane_entry_must_name_a_route() -> None:
    """The lane is checked against the routes when the app is built: a template that names
    no FastAPI route fails at start, not at the first request."""

    async def handler(request: LaneRequest) -> None:
        return None

    entry = LaneEntry("GET", "/v1/nowhere/{x}", handler)
    with pytest.raises(LookupError, match="/v1/nowhere"):
        FastLane(app=lambda *a: None, routes=[Route("/v1/other", handler)], lane=[entry])


@pytest.mark.parametrize(
    ("query", "taken"),
    [
        (b"", 0.0),
        (b"wait=30", 30.0),
        (b"wait=0.25", 0.25),
        (b"wait=0", 0.0),
        (b"wait=-1", None),  # FastAPI's 422
        (b"wait=1e3", None),
        (b"wait=inf", None),
        (b"wait=", None),
        (b"wait=1&wait=2", None),
        (b"wait=1&via=route", None),
        (b"limit=5", None),
    ],
)
def test_the_lane_takes_a_plain_wait_and_leaves_any_other_query_to_fastapi(
    query: bytes, taken: float | None
) -> None:
    """`wait=<seconds>` alone reaches the lane's handler as `wait_s`; any other query
    string, and a `wait` on a route that takes none, goes on to FastAPI."""
    api = FastAPI()
    api.get("/v1/things/{thing}")(lambda thing: thing)
    api.get("/v1/plain/{thing}")(lambda thing: thing)
    seen: list[tuple[str, float]] = []

    async def handler(request: LaneRequest) -> Response:
        seen.append((request.param, request.wait_s))
        return Response(b"lane")

    passed_on: list[bytes] = []

    async def fastapi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        passed_on.append(scope["query_string"])
        await Response(b"fastapi")(scope, receive, send)

    entries = [
        LaneEntry("GET", "/v1/things/{thing}", handler, takes_wait=True, public=True),
        LaneEntry("GET", "/v1/plain/{thing}", handler, public=True),
    ]
    lane = FastLane(app=fastapi, routes=api.routes, lane=entries)

    async def call(path: str) -> None:
        scope = {"type": "http", "method": "GET", "path": path, "query_string": query}

        async def send(_message: Any) -> None:
            return None

        await lane(scope, lambda: None, send)

    asyncio.run(call("/v1/things/t1"))
    asyncio.run(call("/v1/plain/t2"))
    if taken is None:
        assert seen == [] and passed_on == [query, query]
    elif query:  # a wait: the route that takes none passes it on
        assert seen == [("t1", taken)] and passed_on == [query]
    else:  # no query at all: both routes are the lane's
        assert seen == [("t1", 0.0), ("t2", 0.0)] and passed_on == []
